#include "replication/rekey.h"

#include <algorithm>
#include <optional>

#include "replication/outbox.h"
#include "replication/run_context.h"
#include "transport/crypto.h"

namespace sqlpost {
namespace {

constexpr std::string_view kKeyIdLabel = "sqlpost key id";

std::optional<transport::Key> key_from_value(const Value& v) {
  const auto* blob = std::get_if<Blob>(&v.storage());
  if (blob == nullptr || blob->bytes.size() != transport::Key::kBytes) {
    return std::nullopt;
  }
  transport::Key::Bytes bytes{};
  std::copy(blob->bytes.begin(), blob->bytes.end(), bytes.begin());
  return transport::Key(bytes);
}

Value key_value(const transport::Key& key) {
  return Value(Blob{std::vector<std::uint8_t>(key.bytes().begin(), key.bytes().end())});
}

// A step of the rotation: in the run log and the message log (event "rekey").
void note_step(RunContext& run, const Partner& partner, std::int64_t seq, const std::string& text) {
  run.report.notes.push_back("key rotation with " + partner.name + ": " + text);
  run.event({.partner = partner.name, .event = "rekey", .seq = seq, .detail = text});
}

Result<transport::Key> sealing_key(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT key FROM sqlpost_sites WHERE name = ?"));
  st->bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool found, st->step());
  const std::optional<transport::Key> key =
      found ? key_from_value(st->column(0)) : std::optional<transport::Key>{};
  st->reset();
  if (!found) {
    return make_error(Errc::kNotFound, "no such site: " + site);
  }
  if (!key) {
    return make_error(Errc::kConfig, "site '" + site + "' has no valid key");
  }
  return *key;
}

// The rotation's keys other than the sealing key: the offered one or the replaced one.
Result<std::vector<transport::Key>> rotation_keys(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("SELECT new_key, old_key FROM sqlpost_rekey WHERE site = ?"));
  st->bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool found, st->step());
  std::vector<transport::Key> keys;
  for (int column = 0; found && column < 2; ++column) {
    if (auto key = key_from_value(st->column(column))) {
      keys.push_back(*key);
    }
  }
  st->reset();
  return keys;
}

Result<> set_sealing_key(Database& db, const std::string& site, const transport::Key& key) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("UPDATE sqlpost_sites SET key = ? WHERE name = ?"));
  st->bind(1, key_value(key)).bind(2, site);
  return st->run();
}

Result<std::optional<transport::Key>> offered_key(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT new_key FROM sqlpost_rekey WHERE site = ? "
                                               "AND state = 'offered'"));
  st->bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool found, st->step());
  std::optional<transport::Key> key = found ? key_from_value(st->column(0)) : std::nullopt;
  st->reset();
  return key;
}

Result<std::int64_t> last_prepared(RunContext& run, const std::string& site) {
  SQLPOST_TRY_ASSIGN(const Stream s, run.streams.load(site));
  return s.next_seq - 1;
}

// From now on our new messages to `site` are sealed under `next`; `replaced` is
// kept for mail sealed before (ours up to old_until, the partner's until its
// kSwitched record arrives).
Result<> switch_keys(RunContext& run, const std::string& site, const transport::Key& replaced,
                     const transport::Key& next, bool initiator) {
  SQLPOST_TRY_ASSIGN(const std::int64_t old_until, last_prepared(run, site));
  SQLPOST_TRY(set_sealing_key(run.db, site, next));
  SQLPOST_TRY_ASSIGN(
      Statement * st,
      run.db.cached("INSERT OR REPLACE INTO sqlpost_rekey(site, state, initiator, new_key, "
                    "old_key, offer_seq, old_until, marker_seq, partner_switched, started_at, "
                    "switched_at, done_at) VALUES (?1, 'switched', ?2, NULL, ?3, "
                    "ifnull((SELECT offer_seq FROM sqlpost_rekey WHERE site = ?1 AND ?2), 0), "
                    "?4, 0, 0, ifnull((SELECT started_at FROM sqlpost_rekey WHERE site = ?1 "
                    "AND ?2), ?5), ?5, NULL)"));
  st->bind(1, site).bind(2, static_cast<std::int64_t>(initiator ? 1 : 0));
  st->bind(3, key_value(replaced)).bind(4, old_until).bind(5, run.now());
  return st->run();
}

// The old key is forgotten once our own kSwitched record is in the outbox, the
// partner's was applied here (every message it sealed under the old key came
// before it) and the partner acknowledged every message we sealed under the old key.
Result<> finish_if_proven(RunContext& run, const Partner& partner) {
  SQLPOST_TRY_ASSIGN(const RekeyState r, load_rekey_state(run.db, partner.name));
  SQLPOST_TRY_ASSIGN(const Stream s, run.streams.load(partner.name));
  if (r.state != "switched" || r.marker_seq == 0 || !r.partner_switched ||
      s.acked_seq < r.old_until) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run.db.cached("UPDATE sqlpost_rekey SET state = 'done', new_key = NULL, "
                                   "old_key = NULL, done_at = ? WHERE site = ?"));
  st->bind(1, run.now()).bind(2, partner.name);
  SQLPOST_TRY(st->run());
  note_step(run, partner, 0, "complete: both sites use the new key, the old one is forgotten");
  return success();
}

Result<> accept_offer(RunContext& run, const Partner& partner, const RekeyRecord& offer,
                      const transport::Key& current) {
  transport::Key::Bytes bytes{};
  std::copy(offer.key.begin(), offer.key.end(), bytes.begin());
  SQLPOST_TRY(switch_keys(run, partner.name, current, transport::Key(bytes), false));
  note_step(run, partner, 0,
            "took the new key it offered; messages to it are sealed under the new key from "
            "now on");
  return success();
}

// An offer replaces the key we seal with now; else it is stale (two rotations
// crossed and ours won, or a restored partner repeats an old offer) and ignored.
Result<> handle_offer(RunContext& run, const Partner& partner, const RekeyRecord& offer) {
  SQLPOST_TRY_ASSIGN(const transport::Key current, sealing_key(run.db, partner.name));
  if (offer.replaces != key_id(current)) {
    note_step(run, partner, 0,
              "ignored an offer of a new key that replaces a key no longer in use here (two "
              "rotations crossed, or the partner repeats an old one)");
    return success();
  }
  SQLPOST_TRY_ASSIGN(const RekeyState r, load_rekey_state(run.db, partner.name));
  if (r.state == "offered" && run.local.name < partner.name) {
    note_step(run, partner, 0,
              "both sites started one; this site's offer wins (its name sorts first), the "
              "partner's is ignored");
    return success();
  }
  return accept_offer(run, partner, offer, current);
}

Result<> set_partner_switched(RunContext& run, const Partner& partner) {
  SQLPOST_TRY_ASSIGN(Statement * st, run.db.cached("UPDATE sqlpost_rekey SET partner_switched = 1 "
                                                   "WHERE site = ?"));
  st->bind(1, partner.name);
  return st->run();
}

// The partner seals under the key `record.replaces` names from this message on.
// For our own offer this is its acceptance: only now do we switch (an
// acknowledgement of the offer's message alone is not enough: a partner that
// started a rotation of its own at the same time and won ignores our offer).
Result<> handle_switched(RunContext& run, const Partner& partner, const RekeyRecord& record) {
  SQLPOST_TRY_ASSIGN(const RekeyState r, load_rekey_state(run.db, partner.name));
  SQLPOST_TRY_ASSIGN(const transport::Key current, sealing_key(run.db, partner.name));
  if (r.state == "offered") {
    SQLPOST_TRY_ASSIGN(const auto offered, offered_key(run.db, partner.name));
    if (offered && record.replaces == key_id(*offered)) {
      SQLPOST_TRY(switch_keys(run, partner.name, current, *offered, true));
      note_step(run, partner, r.offer_seq,
                "it took the key offered in message " + std::to_string(r.offer_seq) +
                    "; messages to it are sealed under the new key from now on");
      return set_partner_switched(run, partner);
    }
  } else if (r.state == "switched" && record.replaces == key_id(current)) {
    return set_partner_switched(run, partner);
  }
  note_step(run, partner, 0,
            "it says it switched to a key no rotation here waits for; ignored (status shows "
            "the rotation's state)");
  return success();
}

}  // namespace

std::vector<std::uint8_t> key_id(const transport::Key& key) {
  const std::vector<std::uint8_t> label(kKeyIdLabel.begin(), kKeyIdLabel.end());
  const auto mac = transport::crypto::hmac_sha256(key, label);
  return {mac.begin(), mac.begin() + kKeyIdBytes};
}

Result<PairKeys> opening_keys(Database& db, const std::string& site) {
  PairKeys out;
  SQLPOST_TRY_ASSIGN(const transport::Key current, sealing_key(db, site));
  out.keys.push_back(current);
  SQLPOST_TRY_ASSIGN(const auto others, rotation_keys(db, site));
  out.keys.insert(out.keys.end(), others.begin(), others.end());
  SQLPOST_TRY_ASSIGN(const RekeyState r, load_rekey_state(db, site));
  if (r.state.empty()) {
    // The other end: this site may be the one restored from a backup taken before a
    // rotation, and so never heard of it.
    out.hint = " (if this database was restored from a backup and " + site +
               " rotated the pair's key after that backup was taken, this site no longer has "
               "the key: set the pair's key again by hand, docs/operations.md \"Key rotation\")";
  } else {
    out.hint = " (the key shared with " + site + " was rotated (" + r.state +
               "); late copies of mail sealed under a key forgotten since fail like this. If it "
               "keeps failing, " +
               site +
               " may have been restored from a backup older than the rotation: set the pair's "
               "key again by hand, docs/operations.md \"Key rotation\")";
  }
  return out;
}

Result<transport::OpenedPart> open_with_pair_keys(std::string_view mail, const PairKeys& keys,
                                                  std::string_view expected_receiver) {
  Result<transport::OpenedPart> last =
      make_error(Errc::kConfig, "no key to open mail from this site");
  for (const auto& key : keys.keys) {
    last = transport::open_part(mail, key, expected_receiver);
    if (last.ok() || last.error().code != Errc::kAuthentication) {
      return last;
    }
  }
  if (!last.ok() && last.error().code == Errc::kAuthentication && !keys.hint.empty()) {
    return make_error(Errc::kAuthentication, last.error().message + keys.hint);
  }
  return last;
}

Result<RekeyState> load_rekey_state(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("SELECT state, initiator, offer_seq, old_until, marker_seq, "
                               "partner_switched, started_at, ifnull(switched_at, 0), "
                               "ifnull(done_at, 0) FROM sqlpost_rekey WHERE site = ?"));
  st->bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool found, st->step());
  RekeyState r;
  if (found) {
    r.state = st->column_text(0);
    r.initiator = st->column_int(1) != 0;
    r.offer_seq = st->column_int(2);
    r.old_until = st->column_int(3);
    r.marker_seq = st->column_int(4);
    r.partner_switched = st->column_int(5) != 0;
    r.started_at = st->column_int(6);
    r.switched_at = st->column_int(7);
    r.done_at = st->column_int(8);
  }
  st->reset();
  return r;
}

Result<> start_rekey(Database& db, const std::string& site, std::int64_t now) {
  SQLPOST_TRY(sealing_key(db, site));  // an unknown site or one without a key
  SQLPOST_TRY_ASSIGN(const RekeyState r, load_rekey_state(db, site));
  if (r.state == "offered" || r.state == "switched") {
    return make_error(Errc::kAlreadyExists,
                      "a key rotation with site '" + site + "' is already under way (" +
                          describe_rekey(r) +
                          "); it finishes by itself as messages flow both ways (sqlpost status)");
  }
  SQLPOST_TRY_ASSIGN(const transport::Key fresh, transport::generate_key());
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT OR REPLACE INTO sqlpost_rekey(site, state, initiator, "
                                "new_key, started_at) VALUES (?, 'offered', 1, ?, ?)"));
  st.bind(1, site).bind(2, key_value(fresh)).bind(3, now);
  return st.run();
}

Result<std::int64_t> set_pair_key(Database& db, const std::string& site, const transport::Key& key,
                                  std::size_t max_message_bytes) {
  SQLPOST_TRY(sealing_key(db, site));
  SQLPOST_TRY(reencode_outbox(db, site, 0, max_message_bytes, key));
  SQLPOST_TRY(set_sealing_key(db, site, key));
  SQLPOST_TRY_ASSIGN(Statement forget, db.prepare("DELETE FROM sqlpost_rekey WHERE site = ?"));
  forget.bind(1, site);
  SQLPOST_TRY(forget.run());
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  SQLPOST_TRY_ASSIGN(
      Statement parts,
      db.prepare("SELECT seq, digest, part, mail FROM sqlpost_inbox WHERE site = ?"));
  parts.bind(1, site);
  std::vector<std::pair<std::int64_t, Value>> unreadable;
  std::vector<std::int64_t> unreadable_parts;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, parts.step());
    if (!row) {
      break;
    }
    if (!transport::open_part(blob_text(parts.column(3)), key, local.name).ok()) {
      unreadable.emplace_back(parts.column_int(0), parts.column(1));
      unreadable_parts.push_back(parts.column_int(2));
    }
  }
  SQLPOST_TRY_ASSIGN(Statement drop, db.prepare("DELETE FROM sqlpost_inbox WHERE site = ? AND "
                                                "seq = ? AND digest = ? AND part = ?"));
  for (std::size_t i = 0; i < unreadable.size(); ++i) {
    drop.bind(1, site).bind(2, unreadable[i].first).bind(3, unreadable[i].second);
    drop.bind(4, unreadable_parts[i]);
    SQLPOST_TRY(drop.run());
  }
  return static_cast<std::int64_t>(unreadable.size());
}

std::string describe_rekey(const RekeyState& s) {
  if (s.state == "offered") {
    return s.offer_seq == 0
               ? "new key generated; it goes in the next message"
               : "new key offered in message #" + std::to_string(s.offer_seq) +
                     "; waiting for the partner to acknowledge it (both keys are accepted)";
  }
  if (s.state == "switched") {
    std::string waits;
    if (s.marker_seq == 0) {
      waits = "telling the partner in the next message";
    } else if (!s.partner_switched) {
      waits = "waiting for the partner to say it switched too";
    } else {
      waits = "waiting for the partner to acknowledge message #" + std::to_string(s.old_until) +
              ", the last sealed under the old key";
    }
    return std::string("switched to the new key (") +
           (s.initiator ? "this site started the rotation" : "the partner started the rotation") +
           "); the old key is still accepted; " + waits;
  }
  if (s.state == "done") {
    return "last rotation complete; only the new key is kept";
  }
  return {};
}

Result<bool> add_rekey_record(RunContext& run, const Partner& partner, Payload& payload) {
  SQLPOST_TRY_ASSIGN(const RekeyState r, load_rekey_state(run.db, partner.name));
  RekeyRecord record{.step = RekeyStep::kOffer,
                     .sender = run.local.name,
                     .receiver = partner.name,
                     .key = {},
                     .replaces = {}};
  if (r.state == "offered" && r.offer_seq == 0) {
    SQLPOST_TRY_ASSIGN(const auto offered, offered_key(run.db, partner.name));
    SQLPOST_TRY_ASSIGN(const transport::Key current, sealing_key(run.db, partner.name));
    if (!offered) {
      return make_error(Errc::kDatabase, "the key offered to " + partner.name + " is damaged");
    }
    record.key.assign(offered->bytes().begin(), offered->bytes().end());
    record.replaces = key_id(current);
  } else if (r.state == "switched" && r.marker_seq == 0) {
    SQLPOST_TRY_ASSIGN(const transport::Key current, sealing_key(run.db, partner.name));
    record.step = RekeyStep::kSwitched;
    record.replaces = key_id(current);
  } else {
    return false;
  }
  payload.rekey = std::move(record);
  return true;
}

Result<> note_rekey_prepared(RunContext& run, const Partner& partner, std::int64_t seq,
                             const Payload& payload) {
  if (!payload.rekey) {
    return success();
  }
  const bool offer = payload.rekey->step == RekeyStep::kOffer;
  SQLPOST_TRY_ASSIGN(
      Statement * st,
      run.db.cached(offer ? "UPDATE sqlpost_rekey SET offer_seq = ? WHERE site = ?"
                          : "UPDATE sqlpost_rekey SET marker_seq = ? WHERE site = ?"));
  st->bind(1, seq).bind(2, partner.name);
  SQLPOST_TRY(st->run());
  note_step(run, partner, seq,
            "message " + std::to_string(seq) +
                (offer ? " offers the new key (sealed under the current one)"
                       : " tells it this site seals under the new key"));
  return finish_if_proven(run, partner);
}

Result<> rekey_after_ack(RunContext& run, const Partner& partner) {
  return finish_if_proven(run, partner);
}

Result<> apply_rekey_record(RunContext& run, const Partner& partner, const Payload& payload) {
  if (payload.rekey) {
    const RekeyRecord& r = *payload.rekey;
    if (r.sender != partner.name || r.receiver != run.local.name) {
      return make_error(Errc::kAuthentication,
                        "refused a key-rotation record for the pair (" + r.sender + ", " +
                            r.receiver + ") in a message from " + partner.name +
                            ": a site may only rotate the key it shares with this site");
    }
    if (r.step == RekeyStep::kOffer) {
      SQLPOST_TRY(handle_offer(run, partner, r));
    } else {
      SQLPOST_TRY(handle_switched(run, partner, r));
    }
  }
  return finish_if_proven(run, partner);
}

}  // namespace sqlpost
