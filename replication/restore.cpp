#include "replication/restore.h"

#include <algorithm>
#include <optional>

#include "replication/bounce.h"
#include "replication/retention.h"
#include "replication/streams.h"

namespace sqlpost {
namespace {

struct StreamCounters {
  std::int64_t next_seq = 1;
  std::int64_t acked_seq = 0;
  std::int64_t applied_seq = 0;
  std::int64_t restore_seq = 0;
  std::int64_t restore_lost_from = 0;  // of our last restore request (0: none)
};

Result<StreamCounters> counters(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(
      Statement st, db.prepare("SELECT next_seq, acked_seq, applied_seq, restore_seq, "
                               "ifnull(restore_lost_from, 0) FROM sqlpost_streams WHERE site = ?"));
  st.bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row) {
    return make_error(Errc::kInternal, "no delivery state for site " + site);
  }
  return StreamCounters{st.column_int(0), st.column_int(1), st.column_int(2), st.column_int(3),
                        st.column_int(4)};
}

std::vector<std::uint8_t> blob_bytes(const Value& v) {
  if (const auto* b = std::get_if<Blob>(&v.storage())) {
    return b->bytes;
  }
  return {};
}

Value blob_or_null(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) {
    return {};
  }
  return Value(Blob{std::vector<std::uint8_t>(bytes.begin(), bytes.end())});
}

Result<> run_for_site(Database& db, const std::string& sql, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare(sql));
  st.bind(1, site);
  return st.run();
}

Result<> run_for_site(Database& db, const std::string& sql, const std::string& site,
                      std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare(sql));
  st.bind(1, site).bind(2, seq);
  return st.run();
}

Result<> delete_outbox(Database& db, const std::string& site) {
  SQLPOST_TRY(requeue_decided_rows(db, site, 0));
  return run_for_site(db, "DELETE FROM sqlpost_outbox WHERE site = ?1", site);
}

Result<> delete_outbox_after(Database& db, const std::string& site, std::int64_t seq) {
  SQLPOST_TRY(requeue_decided_rows(db, site, seq));
  return run_for_site(db, "DELETE FROM sqlpost_outbox WHERE site = ?1 AND seq > ?2", site, seq);
}

Result<> delete_sent_after(Database& db, const std::string& site, std::int64_t seq) {
  return run_for_site(db, "DELETE FROM sqlpost_sent WHERE site = ?1 AND seq > ?2", site, seq);
}

Result<> delete_inbox_after(Database& db, const std::string& site, std::int64_t seq) {
  return run_for_site(db, "DELETE FROM sqlpost_inbox WHERE site = ?1 AND seq > ?2", site, seq);
}

Result<> make_outbox_due(Database& db, const std::string& site) {
  return run_for_site(db, "UPDATE sqlpost_outbox SET last_sent_at = NULL WHERE site = ?1", site);
}

// The epoch our message `seq` to `site` started after, if we still know it.
Result<std::optional<std::int64_t>> sent_from_epoch(Database& db, const std::string& site,
                                                    std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT from_epoch FROM sqlpost_sent WHERE site = "
                                              "? AND seq = ?"));
  st.bind(1, site).bind(2, seq);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row) {
    return std::optional<std::int64_t>{};
  }
  return std::optional<std::int64_t>{st.column_int(0)};
}

// The first of our messages the partner applied in the timeline we lost. Evidence
// after a restore request means the partner never applied that request (once it
// applies one message of our new timeline, the abandoned one cannot follow), so
// what the request asked back is still lost.
std::int64_t first_lost(const StreamCounters& s) {
  const bool request_unapplied = s.restore_seq > 0 && s.acked_seq < s.restore_seq;
  if (request_unapplied && s.restore_lost_from > 0) {
    return std::min(s.acked_seq + 1, s.restore_lost_from);
  }
  return s.acked_seq + 1;
}

// Where our messages from `seq` on started: the earliest epoch any message we still
// know of from there on started after. After a recovery whose request was never
// applied, the message `seq` itself is gone, and the marker that recovery left
// (at the number it numbered on after) holds the position it rewound to.
Result<std::optional<std::int64_t>> resend_position(Database& db, const std::string& site,
                                                    std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT min(from_epoch) FROM sqlpost_sent WHERE "
                                              "site = ? AND seq >= ?"));
  st.bind(1, site).bind(2, seq);
  SQLPOST_TRY(st.step());
  if (st.column_is_null(0)) {
    return std::optional<std::int64_t>{};
  }
  return std::optional<std::int64_t>{st.column_int(0)};
}

// After our recovery, which linked our new messages to our message `acked_seq` the
// partner had applied, we use numbers from `restore_seq` on: an acknowledgement in
// between names a message of the timeline we lost that the partner applied after
// that one (its evidence was stale), so it will never take our new messages.
bool applied_more_of_lost_timeline(const StreamCounters& s, std::int64_t ack) {
  return s.restore_seq > 0 && ack > s.acked_seq && ack < s.restore_seq;
}

// Did the partner apply, under the number it acknowledges, a message we did not send?
Result<bool> sending_forked(Database& db, const Partner& partner, const Payload& payload,
                            const StreamCounters& s) {
  const auto ack = static_cast<std::int64_t>(payload.ack);
  if (ack >= s.next_seq || applied_more_of_lost_timeline(s, ack)) {
    return true;
  }
  if (payload.ack_digest.empty() || ack == 0) {
    return false;
  }
  SQLPOST_TRY_ASSIGN(const auto ours, sent_identity(db, partner.name, ack));
  return !ours.empty() && ours != payload.ack_digest;
}

// Rows the partner's messages from `lost_from` on brought here go back to it:
// the echo window covers the epochs they were applied in, up to the open one.
Result<std::string> echo_lost_rows(Database& db, const Partner& partner, std::int64_t lost_from,
                                   std::int64_t request_seq) {
  SQLPOST_TRY_ASSIGN(Statement first, db.prepare("SELECT min(epoch), count(*) FROM "
                                                 "sqlpost_applied WHERE site = ? AND seq = ?"));
  first.bind(1, partner.name).bind(2, lost_from);
  SQLPOST_TRY(first.step());
  SQLPOST_TRY_ASSIGN(const std::int64_t pruned, pruned_log_epoch(db));
  if (first.column_int(1) == 0 || first.column_int(0) <= pruned) {
    return make_error(Errc::kNotFound, "the change log no longer holds what its messages from #" +
                                           std::to_string(lost_from) + " brought here");
  }
  const std::int64_t from = first.column_int(0);
  SQLPOST_TRY_ASSIGN(const std::int64_t open,
                     db.query_int("SELECT epoch FROM sqlpost_epoch WHERE id = 1"));
  SQLPOST_TRY_ASSIGN(Statement window, db.prepare("UPDATE sqlpost_streams SET echo_from = ?, "
                                                  "echo_to = ? WHERE site = ?"));
  window.bind(1, from).bind(2, open).bind(3, partner.name);
  SQLPOST_TRY(window.run());
  SQLPOST_TRY_ASSIGN(Statement pos, db.prepare("UPDATE sqlpost_sites SET sent_epoch = min("
                                               "sent_epoch, ?) WHERE name = ?"));
  pos.bind(1, from - 1).bind(2, partner.name);
  SQLPOST_TRY(pos.run());
  return "its rows from its messages #" + std::to_string(lost_from) + "-#" +
         std::to_string(request_seq - 1) + " are sent back to it";
}

Error log_too_short(std::int64_t seq) {
  return {Errc::kNotFound,
          "the change log no longer reaches back to our message #" + std::to_string(seq)};
}

// Our messages after `holds` are built again from the change log, numbered on
// after the highest number ever used: the first new message names message
// `holds` as its predecessor, so the partner applies it next (applier.cpp).
Result<std::string> regenerate_numbering_on(Database& db, const Partner& partner,
                                            const StreamCounters& s, std::int64_t holds) {
  SQLPOST_TRY_ASSIGN(const auto first, sent_from_epoch(db, partner.name, holds + 1));
  SQLPOST_TRY_ASSIGN(const std::int64_t pruned, pruned_log_epoch(db));
  if (!first || *first < pruned) {
    return log_too_short(holds + 1);
  }
  SQLPOST_TRY(delete_outbox_after(db, partner.name, holds));
  // Their identities are kept: the partner may apply some of them (resent from an
  // old outbox) before the new ones reach it (relink_regenerated()).
  SQLPOST_TRY(run_for_site(
      db,
      "INSERT OR REPLACE INTO sqlpost_superseded(site, seq, digest) SELECT site, seq, digest "
      "FROM sqlpost_sent WHERE site = ?1 AND seq > ?2 AND digest IS NOT NULL",
      partner.name, holds));
  SQLPOST_TRY(delete_sent_after(db, partner.name, holds));
  SQLPOST_TRY(Streams(db).lower_acked(partner.name, holds));
  SQLPOST_TRY_ASSIGN(Statement pos,
                     db.prepare("UPDATE sqlpost_sites SET sent_epoch = ? WHERE name = ?"));
  pos.bind(1, *first).bind(2, partner.name);
  SQLPOST_TRY(pos.run());
  return "our messages after #" + std::to_string(holds) + " are regenerated as #" +
         std::to_string(s.next_seq) + " on";
}

// Our messages the partner lost (acknowledged, so gone from the outbox) are
// regenerated from the change log, from the one after what it still holds.
Result<std::string> regenerate_lost_messages(Database& db, const Partner& partner,
                                             const StreamCounters& s, std::int64_t holds) {
  if (s.acked_seq <= holds) {  // still in the outbox: due again at once
    SQLPOST_TRY(make_outbox_due(db, partner.name));
    return std::string("our messages after #" + std::to_string(holds) +
                       " are sent again from the outbox");
  }
  SQLPOST_TRY_ASSIGN(const auto held, sent_identity(db, partner.name, holds));
  if (!held.empty() || holds == 0) {  // "message 0" has a known identity
    return regenerate_numbering_on(db, partner, s, holds);
  }
  // Without the identity of message `holds` the partner could not link a new number
  // to it: the same numbers are used again, as sqlpost rescan does.
  auto rescanned = rescan_in_transaction(db, partner.name, holds + 1);
  if (!rescanned.ok()) {
    return log_too_short(holds + 1);
  }
  return "our messages from #" + std::to_string(holds + 1) + " are regenerated";
}

}  // namespace

std::vector<std::uint8_t> stream_start_identity() {
  std::vector<std::uint8_t> zeros(kMessageDigestBytes, 0);
  return zeros;
}

Result<std::vector<std::uint8_t>> applied_identity(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT applied_digest, applied_seq FROM "
                                               "sqlpost_streams WHERE site = ?"));
  st->bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool row, st->step());
  std::vector<std::uint8_t> identity;
  if (row && st->column_is_null(0) && st->column_int(1) == 0) {
    identity = stream_start_identity();
  } else if (row) {
    identity = blob_bytes(st->column(0));
  }
  st->reset();
  return identity;
}

Result<std::vector<std::uint8_t>> sent_identity(Database& db, const std::string& site,
                                                std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT digest FROM sqlpost_sent WHERE site = ? AND seq = ?"));
  st.bind(1, site).bind(2, seq);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  return row ? blob_bytes(st.column(0)) : std::vector<std::uint8_t>{};
}

Result<std::vector<std::uint8_t>> chain_identity(Database& db, const std::string& site,
                                                 std::int64_t next_seq) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT digest FROM sqlpost_sent WHERE site = ? AND "
                                               "seq < ? ORDER BY seq DESC LIMIT 1"));
  st->bind(1, site).bind(2, next_seq);
  SQLPOST_TRY_ASSIGN(const bool row, st->step());
  if (row) {
    auto digest = blob_bytes(st->column(0));
    st->reset();
    return digest;
  }
  // Nothing built before it that the partner applied: it starts the stream.
  SQLPOST_TRY_ASSIGN(Statement acked,
                     db.prepare("SELECT acked_seq FROM sqlpost_streams WHERE site = ?"));
  acked.bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool known, acked.step());
  return known && acked.column_int(0) == 0 ? stream_start_identity() : std::vector<std::uint8_t>{};
}

Result<std::string> own_restore_evidence(Database& db, const Partner& partner,
                                         const Payload& payload) {
  SQLPOST_TRY_ASSIGN(const StreamCounters s, counters(db, partner.name));
  const auto ack = static_cast<std::int64_t>(payload.ack);
  if (applied_more_of_lost_timeline(s, ack)) {
    return "site " + partner.name + " has applied our message #" + std::to_string(ack) +
           " of the timeline this site lost, after the one its recovery continued from (#" +
           std::to_string(s.acked_seq) + ")";
  }
  if (ack < s.restore_seq) {
    return std::string();  // built before the partner knew of our last recovery
  }
  if (ack >= s.next_seq) {
    return "site " + partner.name + " has applied our message #" + std::to_string(ack) +
           ", but this site has sent only up to #" + std::to_string(s.next_seq - 1);
  }
  SQLPOST_TRY_ASSIGN(const bool forked, sending_forked(db, partner, payload, s));
  if (forked) {
    return "site " + partner.name + " has applied a different message #" + std::to_string(ack) +
           " than the one this site sent";
  }
  const auto confirmed = static_cast<std::int64_t>(payload.confirmed);
  if (confirmed > s.applied_seq) {
    return "site " + partner.name + " holds this site's acknowledgement of its message #" +
           std::to_string(confirmed) + ", but this site has applied only up to #" +
           std::to_string(s.applied_seq);
  }
  return std::string();
}

Result<std::string> note_partner_cannot_recover(Database& db, const Partner& partner,
                                                const Payload& payload) {
  SQLPOST_TRY_ASSIGN(const StreamCounters s, counters(db, partner.name));
  if (!payload.reextract || s.restore_seq == 0 ||
      static_cast<std::int64_t>(payload.ack) < s.restore_seq) {
    return std::string();
  }
  SQLPOST_TRY_ASSIGN(const bool known, recovery_needs_extract(db, partner.name));
  if (known) {
    return std::string();
  }
  const std::string summary =
      "this site went back in time (restored from a backup?) and site " + partner.name +
      " cannot send again what it lost: its change log no longer reaches back. Re-extract this "
      "site from " +
      partner.name + " ('sqlpost extract')";
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("UPDATE sqlpost_streams SET recovery = ?, "
                                              "recovery_ack = ? WHERE site = ?"));
  st.bind(1, summary).bind(2, kThisSiteNeedsExtract).bind(3, partner.name);
  SQLPOST_TRY(st.run());
  return summary;
}

Result<bool> recovery_needs_extract(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT count(*) FROM sqlpost_streams WHERE site = ? AND "
                                "recovery IS NOT NULL AND (recovery_ack IS NULL OR "
                                "recovery_ack = ?)"));
  st.bind(1, site).bind(2, kThisSiteNeedsExtract);
  SQLPOST_TRY(st.step());
  return st.column_int(0) > 0;
}

Result<bool> partner_needs_extract(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("SELECT count(*) FROM sqlpost_streams WHERE site = ? AND "
                               "recovery IS NOT NULL AND recovery_ack IS NULL"));
  st->bind(1, site);
  SQLPOST_TRY(st->step());
  const bool needs = st->column_int(0) > 0;
  st->reset();
  return needs;
}

Result<std::string> begin_own_recovery(Database& db, const Partner& partner, const Payload& payload,
                                       const std::string& evidence) {
  SQLPOST_TRY_ASSIGN(const StreamCounters s, counters(db, partner.name));
  SQLPOST_TRY_ASSIGN(const bool forked, sending_forked(db, partner, payload, s));
  std::int64_t next = s.next_seq;
  std::int64_t lost_from = s.next_seq;  // nothing of ours lost unless our stream forked
  if (forked) {
    // The partner applied up to `ack` in a timeline this site no longer has:
    // number on after it, and send again everything it had not confirmed here.
    const auto ack = static_cast<std::int64_t>(payload.ack);
    lost_from = first_lost(s);
    SQLPOST_TRY_ASSIGN(const auto first, resend_position(db, partner.name, lost_from));
    const std::int64_t from_epoch = first.value_or(partner.sent_epoch);
    SQLPOST_TRY(delete_outbox(db, partner.name));
    SQLPOST_TRY(delete_sent_after(db, partner.name, s.acked_seq));
    SQLPOST_TRY_ASSIGN(Statement chain,
                       db.prepare("INSERT OR REPLACE INTO sqlpost_sent(site, seq, from_epoch, "
                                  "to_epoch, digest) VALUES (?, ?, ?, ?, ?)"));
    chain.bind(1, partner.name).bind(2, ack).bind(3, from_epoch).bind(4, from_epoch);
    chain.bind(5, blob_or_null(payload.ack_digest));
    SQLPOST_TRY(chain.run());
    SQLPOST_TRY_ASSIGN(Statement pos,
                       db.prepare("UPDATE sqlpost_sites SET sent_epoch = ? WHERE name = ?"));
    pos.bind(1, from_epoch).bind(2, partner.name);
    SQLPOST_TRY(pos.run());
    // Numbers used since the restore are abandoned; the partner links our next
    // message to its last applied one by identity (without it: exactly ack + 1).
    next = payload.ack_digest.empty() ? ack + 1 : std::max(s.next_seq, ack + 1);
    SQLPOST_TRY(Streams(db).set_acked(partner.name, ack));
  }
  // Whatever of the partner's stream waits here beyond what we applied is from the
  // timeline it is about to regenerate.
  SQLPOST_TRY(delete_inbox_after(db, partner.name, s.applied_seq));
  const std::string summary =
      "this site went back in time (restored from a backup?): " + evidence +
      ". Recovering by itself: our messages continue at #" + std::to_string(next) + ", and site " +
      partner.name + " is asked to send again what this site lost (its messages after #" +
      std::to_string(s.applied_seq) +
      (lost_from < next ? ", and the rows of our messages from #" + std::to_string(lost_from)
                        : "") +
      ")";
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("UPDATE sqlpost_streams SET next_seq = ?2, restore_seq = ?2, "
                                "restore_request = ?3, restore_lost_from = ?3, recovery = ?4, "
                                "recovery_ack = ?2, "
                                "gap_since = NULL, resend_from = NULL, halted = NULL WHERE "
                                "site = ?1"));
  st.bind(1, partner.name).bind(2, next).bind(3, lost_from).bind(4, summary);
  SQLPOST_TRY(st.run());
  return summary;
}

namespace {

// The epoch the regeneration for the partner's restore started after, if any.
Result<std::optional<std::int64_t>> last_regeneration(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT regen_from FROM sqlpost_streams WHERE site = ?"));
  st.bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row || st.column_is_null(0)) {
    return std::optional<std::int64_t>{};
  }
  return std::optional<std::int64_t>{st.column_int(0)};
}

// Is `identity` that of our message `seq`, replaced by the last regeneration?
Result<bool> superseded_message(Database& db, const std::string& site, std::int64_t seq,
                                std::span<const std::uint8_t> identity) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT digest FROM sqlpost_superseded WHERE site = "
                                              "? AND seq = ?"));
  st.bind(1, site).bind(2, seq);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row) {
    return false;
  }
  const auto digest = blob_bytes(st.column(0));
  return std::ranges::equal(digest, identity);
}

// The regeneration starts over, linked to our message `seq` (the marker it left
// in sqlpost_sent names its identity), from the same position and echo window.
Result<> restart_regeneration(Database& db, const std::string& site, std::int64_t seq,
                              std::span<const std::uint8_t> identity, std::int64_t from) {
  SQLPOST_TRY(delete_outbox_after(db, site, seq));
  SQLPOST_TRY(delete_sent_after(db, site, seq));
  SQLPOST_TRY_ASSIGN(Statement link,
                     db.prepare("INSERT OR REPLACE INTO sqlpost_sent(site, seq, from_epoch, "
                                "to_epoch, digest) VALUES (?, ?, ?, ?, ?)"));
  link.bind(1, site).bind(2, seq).bind(3, from).bind(4, from).bind(5, blob_or_null(identity));
  SQLPOST_TRY(link.run());
  SQLPOST_TRY_ASSIGN(Statement pos,
                     db.prepare("UPDATE sqlpost_sites SET sent_epoch = ? WHERE name = ?"));
  pos.bind(1, from).bind(2, site);
  SQLPOST_TRY(pos.run());
  SQLPOST_TRY(run_for_site(db,
                           "UPDATE sqlpost_streams SET acked_seq = ?2, echo_from = "
                           "regen_echo_from, echo_to = regen_echo_to WHERE site = ?1",
                           site, seq));
  return run_for_site(db, "DELETE FROM sqlpost_superseded WHERE site = ?1 AND seq <= ?2", site,
                      seq);
}

}  // namespace

Result<std::string> relink_regenerated(Database& db, const Partner& partner,
                                       const Payload& payload) {
  SQLPOST_TRY_ASSIGN(const StreamCounters s, counters(db, partner.name));
  // Replaced messages the partner has acknowledged past are of no more use.
  SQLPOST_TRY(run_for_site(db, "DELETE FROM sqlpost_superseded WHERE site = ?1 AND seq <= ?2",
                           partner.name, s.acked_seq));
  const auto ack = static_cast<std::int64_t>(payload.ack);
  if (ack <= s.acked_seq || ack >= s.next_seq || payload.ack_digest.empty()) {
    return std::string();
  }
  SQLPOST_TRY_ASSIGN(const bool replaced,
                     superseded_message(db, partner.name, ack, payload.ack_digest));
  SQLPOST_TRY_ASSIGN(const auto regeneration, last_regeneration(db, partner.name));
  SQLPOST_TRY_ASSIGN(const std::int64_t pruned, pruned_log_epoch(db));
  if (!replaced || !regeneration || *regeneration < pruned) {
    return std::string();
  }
  SQLPOST_TRY(restart_regeneration(db, partner.name, ack, payload.ack_digest, *regeneration));
  return "site " + partner.name + " applied our message #" + std::to_string(ack) +
         " (resent from before its restore request was served) before the messages "
         "regenerated for it, which therefore do not follow: they are regenerated again, linked "
         "to #" +
         std::to_string(ack) + ", as #" + std::to_string(s.next_seq) + " on";
}

Result<PartnerRecovery> serve_partner_restore(Database& db, const Partner& partner,
                                              const Payload& request, std::int64_t request_seq) {
  SQLPOST_TRY_ASSIGN(const StreamCounters s, counters(db, partner.name));
  const auto holds = static_cast<std::int64_t>(request.ack);
  const auto lost_from = static_cast<std::int64_t>(request.restored_from);
  PartnerRecovery out;
  std::string done;
  auto regenerated = regenerate_lost_messages(db, partner, s, holds);
  if (!regenerated.ok()) {
    out.needs_extract = true;
    done = regenerated.error().message;
  } else {
    done = regenerated.value();
  }
  if (!out.needs_extract && lost_from < request_seq) {
    auto echoed = echo_lost_rows(db, partner, lost_from, request_seq);
    if (!echoed.ok()) {
      out.needs_extract = true;
      done = echoed.error().message;
    } else {
      done += "; " + echoed.value();
    }
  }
  if (out.needs_extract) {
    out.summary = "site " + partner.name +
                  " was restored from a backup and lost what this site sent it, but " + done +
                  ": re-extract the site ('sqlpost extract'); until then nothing more is "
                  "applied there from this site";
  } else {
    out.summary = "site " + partner.name +
                  " was restored from a backup (its restore request in "
                  "message #" +
                  std::to_string(request_seq) + "): " + done;
  }
  SQLPOST_TRY(run_for_site(db,
                           "UPDATE sqlpost_streams SET regen_from = (SELECT sent_epoch FROM "
                           "sqlpost_sites WHERE name = ?1), regen_echo_from = echo_from, "
                           "regen_echo_to = echo_to WHERE site = ?1",
                           partner.name));
  SQLPOST_TRY_ASSIGN(const StreamCounters after, counters(db, partner.name));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("UPDATE sqlpost_streams SET recovery = ?, "
                                              "recovery_ack = ? WHERE site = ?"));
  st.bind(1, out.summary);
  if (out.needs_extract) {
    st.bind_null(2);
  } else {
    st.bind(2, after.next_seq);
  }
  st.bind(3, partner.name);
  SQLPOST_TRY(st.run());
  return out;
}

Result<> record_applied(Database& db, const std::string& site, std::int64_t seq,
                        std::span<const std::uint8_t> identity) {
  SQLPOST_TRY_ASSIGN(Statement digest,
                     db.prepare("UPDATE sqlpost_streams SET applied_digest = ? WHERE site = ?"));
  digest.bind(1, blob_or_null(identity)).bind(2, site);
  SQLPOST_TRY(digest.run());
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT OR REPLACE INTO sqlpost_applied(site, seq, epoch) SELECT "
                                "?, ?, epoch FROM sqlpost_epoch WHERE id = 1"));
  st.bind(1, site).bind(2, seq);
  return st.run();
}

}  // namespace sqlpost
