#include "replication/engine.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "replication/apply.h"
#include "replication/authorize.h"
#include "replication/bookkeeping.h"
#include "replication/bounce.h"
#include "replication/changelog.h"
#include "replication/health.h"
#include "replication/keys.h"
#include "replication/origin.h"
#include "replication/outbox.h"
#include "replication/payload.h"
#include "replication/restore.h"
#include "replication/retention.h"
#include "replication/routing.h"
#include "replication/streams.h"
#include "replication/subsets.h"
#include "schema/metadata.h"
#include "transport/codec.h"
#include "transport/dsn.h"

namespace sqlpost {
namespace {

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<transport::Key> key_of(const Partner& p) {
  if (p.key.size() != transport::Key::kBytes) {
    return make_error(Errc::kConfig, "site '" + p.name + "' has no valid key");
  }
  transport::Key::Bytes bytes{};
  std::copy(p.key.begin(), p.key.end(), bytes.begin());
  return transport::Key(bytes);
}

bool is_database_failure(Errc code) { return code == Errc::kDatabase || code == Errc::kBusy; }

void note(RunReport& report, const Error& e, const std::string& context) {
  report.problems.push_back(context + ": " + e.message);
  report.worst = e.code;
}

Blob as_blob(std::string_view text) {
  return Blob{std::vector<std::uint8_t>(text.begin(), text.end())};
}

std::string blob_text(const Value& v) {
  if (const auto* b = std::get_if<Blob>(&v.storage())) {
    return {b->bytes.begin(), b->bytes.end()};
  }
  if (const auto* t = std::get_if<Text>(&v.storage())) {
    return t->bytes;
  }
  return {};
}

// One message waiting in the inbox: its number and the authenticated digest of its
// compressed bytes. A partner restored from a backup may have sent two messages
// under one number (docs/protocol.md): both wait, apart, until one is applied.
struct InboxMessage {
  std::int64_t seq = 0;
  Blob digest;
};

// Messages kept under one number; a further one replaces the oldest arrival.
constexpr std::int64_t kMaxMessagesPerNumber = 4;

Blob digest_blob(const transport::crypto::Digest& digest) {
  return Blob{std::vector<std::uint8_t>(digest.begin(), digest.end())};
}

}  // namespace

// The run's working state: the database, link, options and the site facts.
struct Engine::Impl {
  Impl(Database& database, transport::Link& mail, const EngineOptions& engine_options,
       RunReport& run_report)
      : db(database), link(mail), options(engine_options), report(run_report), streams(database) {}

  Database& db;
  transport::Link& link;
  const EngineOptions& options;
  RunReport& report;
  Streams streams;
  LocalSite local;
  std::map<std::string, Partner> partners;
  std::size_t budget_ = 0;  // of the message being decoded
  // The prepare pass's open outbox batch (see prepare_for) and what it holds.
  std::optional<Transaction> batch;
  std::int64_t batch_bytes = 0;
  // Bookkeeping of parts and acknowledgements already sent, not yet written.
  std::vector<std::function<Result<>()>> after_send;

  std::int64_t now() const { return options.now ? options.now() : system_now(); }

  void event(MessageEvent e) const {
    e.at = now();
    report.events.push_back(std::move(e));
  }

  Result<> crash_point(std::string_view point) const {
    if (options.crash_at && options.crash_at(point)) {
      return make_error(Errc::kInternal, "injected crash at " + std::string(point));
    }
    return success();
  }

  Result<> load() {
    SQLPOST_TRY_ASSIGN(local, load_local_site(db));
    SQLPOST_TRY_ASSIGN(const auto list, load_partners(db));
    for (const auto& p : list) {
      partners.emplace(p.name, p);
      SQLPOST_TRY(streams.ensure(p.name));
    }
    return success();
  }

  // ---- receive

  Result<bool> is_known_foreign(const std::string& id) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("SELECT 1 FROM sqlpost_foreign_mail WHERE mail_id = ?"));
    st->bind(1, id);
    SQLPOST_TRY_ASSIGN(const bool found, st->step());
    st->reset();
    return found;
  }

  Result<> remember_foreign(const std::string& id) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("INSERT OR IGNORE INTO sqlpost_foreign_mail VALUES (?, ?)"));
    st->bind(1, id).bind(2, now());
    SQLPOST_TRY(st->run());
    return cap_foreign(db, now());
  }

  Result<> remove_mail(const transport::MailRef& ref) {
    auto removed = link.remove(ref);
    if (!removed.ok()) {
      note(report, removed.error(), "removing mail " + ref.id + " from the mailbox");
    }
    return success();
  }

  Result<> reject(const transport::MailRef& ref, std::string_view mail,
                  const std::string& claimed_sender, const std::string& reason) {
    report.problems.push_back(
        "rejected mail " + ref.id +
        (claimed_sender.empty() ? "" : " claiming to be from " + claimed_sender) + ": " + reason +
        " (kept in sqlpost_rejected)");
    report.worst = Errc::kCorruption;
    ++report.rejected;
    event({.partner = claimed_sender.empty() ? "?" : claimed_sender,
           .event = "rejected",
           .bytes = static_cast<std::int64_t>(mail.size()),
           .detail = "mail " + ref.id + ": " + reason});
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("INSERT INTO sqlpost_rejected(received_at, claimed_sender, "
                                 "reason, mail) VALUES (?, ?, ?, ?)"));
    st->bind(1, now()).bind(2, claimed_sender).bind(3, reason);
    st->bind(4, Value(as_blob(mail.substr(0, kMaxRejectedMailKept))));
    SQLPOST_TRY(st->run());
    if (partners.count(claimed_sender) > 0) {
      SQLPOST_TRY(streams.count_rejected(claimed_sender));
    }
    SQLPOST_TRY(cap_rejected(db, now()));
    SQLPOST_TRY(tx.commit());
    SQLPOST_TRY(crash_point("after-reject-commit"));
    return remove_mail(ref);
  }

  Result<> handle_control(const transport::MailRef& ref, std::string_view mail,
                          const Partner& partner, transport::OpenedPart part) {
    std::vector<transport::OpenedPart> parts;
    parts.push_back(std::move(part));
    auto bytes = decode_bounded(std::move(parts));
    if (!bytes.ok()) {
      return reject(ref, mail, partner.name, bytes.error().message);
    }
    auto payload = decode_payload(bytes.value(), limits_for(bytes.value().size()));
    if (!payload.ok() || payload->kind != PayloadKind::kAckOnly) {
      return reject(ref, mail, partner.name,
                    payload.ok() ? "sequence 0 carries data" : payload.error().message);
    }
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY(process_ack(partner, payload.value()));
    SQLPOST_TRY(keep_health_from(partner, payload.value()));
    SQLPOST_TRY(streams.set_last_received(partner.name, now()));
    SQLPOST_TRY(tx.commit());
    event({.partner = partner.name,
           .event = "received",
           .part = 1,
           .parts = 1,
           .bytes = static_cast<std::int64_t>(mail.size()),
           .detail =
               "acknowledgement of #" + std::to_string(payload->ack) +
               (payload->resend_from > 0 ? ", resend from #" + std::to_string(payload->resend_from)
                                         : "")});
    SQLPOST_TRY(crash_point("after-control-commit"));
    return remove_mail(ref);
  }

  Result<> store_part(const transport::MailRef& ref, std::string_view mail, const Partner& partner,
                      const transport::OpenedPart& opened) {
    const transport::PartHeader& h = opened.header;
    const InboxMessage message{static_cast<std::int64_t>(h.sequence), digest_blob(opened.digest)};
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
    if (static_cast<std::int64_t>(h.sequence) <= s.applied_seq) {
      ++report.duplicates;  // applied already: drop it, and acknowledge again
      report.details.push_back("mail " + ref.id + ": message " + std::to_string(h.sequence) +
                               " part " + std::to_string(h.part) + " from " + partner.name +
                               " was applied before; dropped");
      SQLPOST_TRY(streams.mark_ack_owed(partner.name));
      event({.partner = partner.name,
             .event = "duplicate",
             .seq = static_cast<std::int64_t>(h.sequence),
             .part = static_cast<std::int64_t>(h.part),
             .parts = static_cast<std::int64_t>(h.parts),
             .bytes = static_cast<std::int64_t>(mail.size()),
             .detail = {}});
    } else {
      ++report.parts_received;
      report.details.push_back("mail " + ref.id + ": message " + std::to_string(h.sequence) +
                               " part " + std::to_string(h.part) + "/" + std::to_string(h.parts) +
                               " from " + partner.name + " stored");
      SQLPOST_TRY(drop_other_encoding(partner, message, h.parts));
      SQLPOST_TRY(make_room_for(partner, message));
      SQLPOST_TRY_ASSIGN(Statement * st,
                         db.cached("INSERT OR IGNORE INTO sqlpost_inbox(site, seq, digest, part, "
                                   "parts, mail, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"));
      st->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
      st->bind(4, static_cast<std::int64_t>(h.part)).bind(5, static_cast<std::int64_t>(h.parts));
      st->bind(6, Value(as_blob(mail))).bind(7, now());
      SQLPOST_TRY(st->run());
      event({.partner = partner.name,
             .event = "received",
             .seq = static_cast<std::int64_t>(h.sequence),
             .part = static_cast<std::int64_t>(h.part),
             .parts = static_cast<std::int64_t>(h.parts),
             .bytes = static_cast<std::int64_t>(mail.size()),
             .detail = {}});
    }
    SQLPOST_TRY(streams.set_last_received(partner.name, now()));
    SQLPOST_TRY(tx.commit());
    SQLPOST_TRY(crash_point("after-inbox-commit"));
    return remove_mail(ref);
  }

  // Parts of the message with another part count are another encoding of it
  // (sqlpost resend re-splits): the newest arrival wins, encodings are never mixed.
  Result<> drop_other_encoding(const Partner& partner, const InboxMessage& message,
                               std::uint32_t parts) {
    SQLPOST_TRY_ASSIGN(Statement * st, db.cached("DELETE FROM sqlpost_inbox WHERE site = ? AND "
                                                 "seq = ? AND digest = ? AND parts <> ?"));
    st->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
    st->bind(4, static_cast<std::int64_t>(parts));
    SQLPOST_TRY(st->run());
    if (db.changes() > 0) {
      report.details.push_back("dropped " + std::to_string(db.changes()) + " part(s) of message " +
                               std::to_string(message.seq) + " from " + partner.name +
                               " of an older encoding (now " + std::to_string(parts) + " parts)");
    }
    return success();
  }

  // Another message under a number already waiting here keeps what is there, up
  // to kMaxMessagesPerNumber; beyond, the one that arrived first gives way.
  Result<> make_room_for(const Partner& partner, const InboxMessage& message) {
    SQLPOST_TRY_ASSIGN(Statement * count,
                       db.cached("SELECT count(DISTINCT digest) FROM sqlpost_inbox WHERE site = ? "
                                 "AND seq = ? AND digest <> ?"));
    count->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
    SQLPOST_TRY(count->step());
    const std::int64_t others = count->column_int(0);
    count->reset();
    if (others < kMaxMessagesPerNumber) {
      return success();
    }
    SQLPOST_TRY_ASSIGN(Statement * oldest,
                       db.cached("DELETE FROM sqlpost_inbox WHERE site = ?1 AND seq = ?2 AND "
                                 "digest = (SELECT digest FROM sqlpost_inbox WHERE site = ?1 AND "
                                 "seq = ?2 AND digest <> ?3 GROUP BY digest ORDER BY "
                                 "min(received_at) LIMIT 1)"));
    oldest->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
    return oldest->run();
  }

  Result<> handle_sqlpost_mail(const transport::MailRef& ref, const std::string& mail) {
    auto header = transport::peek_part(mail);
    if (!header.ok()) {
      return reject(ref, mail, "", header.error().message);
    }
    const auto found = partners.find(header->sender);
    if (found == partners.end()) {
      return reject(ref, mail, header->sender, "from unknown site '" + header->sender + "'");
    }
    if (header->receiver != local.name) {
      return reject(ref, mail, header->sender,
                    "addressed to site '" + header->receiver + "', not this site");
    }
    const Partner& partner = found->second;
    SQLPOST_TRY_ASSIGN(const transport::Key key, key_of(partner));
    auto opened = transport::open_part(mail, key, local.name);
    if (!opened.ok()) {
      return reject(ref, mail, partner.name, opened.error().message);
    }
    if (header->sequence == 0) {
      return handle_control(ref, mail, partner, std::move(opened).value());
    }
    return store_part(ref, mail, partner, opened.value());
  }

  Result<> receive_one(const transport::MailRef& ref) {
    SQLPOST_TRY_ASSIGN(const bool foreign, is_known_foreign(ref.id));
    if (foreign) {
      ++report.foreign;
      return success();
    }
    auto mail = link.fetch(ref);
    if (!mail.ok() && mail.error().code == Errc::kLimitExceeded) {
      return handle_oversize(ref, mail.error());
    }
    if (!mail.ok()) {
      note(report, mail.error(), "reading mail " + ref.id + " (left in the mailbox)");
      return success();
    }
    ++report.mails_seen;
    if (!transport::looks_like_sqlpost(mail.value())) {
      if (const auto bounce = transport::parse_bounce(mail.value())) {
        SQLPOST_TRY_ASSIGN(const bool ours, handle_bounce(ref, *bounce));
        if (ours) {
          return success();
        }
      }
      ++report.foreign;
      return remember_foreign(ref.id);
    }
    return handle_sqlpost_mail(ref, mail.value());
  }

  // Mail over kMaxMailBytes: sqlpost's (by its head) is recorded, headers only, and
  // removed; foreign mail is left alone and remembered, so it is counted once and
  // does not change the exit code of later runs.
  Result<> handle_oversize(const transport::MailRef& ref, const Error& why) {
    auto head = link.fetch_head(ref, transport::kMaxHeaderBlockBytes);
    if (head.ok() && transport::looks_like_sqlpost(head.value())) {
      const std::string& text = head.value();
      const auto end = text.find("\r\n\r\n");
      const std::string headers = end == std::string::npos ? text : text.substr(0, end + 2);
      auto peeked = transport::peek_part(text);
      return reject(ref, headers, peeked.ok() ? peeked->sender : std::string(),
                    "mail of " + std::to_string(ref.size) + " bytes is larger than the limit (" +
                        why.message + "); headers kept");
    }
    ++report.foreign;
    report.notes.push_back("mail " + ref.id + " of " + std::to_string(ref.size) +
                           " bytes is not sqlpost's and over the size limit; left in the "
                           "mailbox and not read again");
    SQLPOST_TRY(count_dropped_oversize());
    return remember_foreign(ref.id);
  }

  Result<> count_dropped_oversize() {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("INSERT INTO sqlpost_meta(key, value) VALUES "
                                 "('oversize_foreign', 1) ON CONFLICT(key) DO UPDATE SET value = "
                                 "ifnull(value, 0) + 1"));
    return st->run();
  }

  // ---- health reports (replication/health.h)

  // Every message to the parent carries this site's health and its children's.
  Result<> add_health_for(const Partner& partner, Payload& payload) {
    if (partner.relation != Relation::kParent) {
      return success();
    }
    SQLPOST_TRY_ASSIGN(payload.health, local_health(db, local.name, options.version, now()));
    return success();
  }

  Result<> keep_health_from(const Partner& partner, const Payload& payload) {
    if (partner.relation != Relation::kChild) {
      return success();
    }
    return store_health(db, partner.name, payload.health, now());
  }

  // ---- bounces

  // A delivery status notification about one of our parts (the returned Message-ID
  // verifies under the pair key) is recorded and removed from the mailbox: a size
  // refusal re-splits the message smaller; any other permanent refusal is a problem
  // of the run and the part waits resend_timeout. Anything else stays foreign.
  Result<bool> handle_bounce(const transport::MailRef& ref, const transport::Bounce& b) {
    const auto found = partners.find(b.original.receiver);
    if (b.original.sender != local.name || found == partners.end()) {
      return false;
    }
    const Partner& partner = found->second;
    auto key = key_of(partner);
    if (!key.ok() || !transport::message_id_is_ours(b.message_id, b.original, key.value())) {
      return false;
    }
    const auto seq = static_cast<std::int64_t>(b.original.sequence);
    const auto part = static_cast<std::int64_t>(b.original.part);
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    std::optional<std::int64_t> resplit;
    if (b.permanent() && b.size_refusal()) {
      SQLPOST_TRY_ASSIGN(resplit, resplit_smaller(partner.name, b.original));
    } else if (b.permanent()) {
      SQLPOST_TRY(hold_part(partner.name, seq, part));
    }
    SQLPOST_TRY(record_bounce(partner.name, seq, part, b, resplit));
    SQLPOST_TRY(tx.commit());
    report_bounce(partner, b, resplit);
    SQLPOST_TRY(remove_mail(ref));
    return true;
  }

  void report_bounce(const Partner& partner, const transport::Bounce& b,
                     std::optional<std::int64_t> resplit) {
    const std::string what = "message " + std::to_string(b.original.sequence) + " part " +
                             std::to_string(b.original.part) + " to " + partner.name + " <" +
                             partner.address + "> bounced (" + b.action + " " + b.status + ": " +
                             b.diagnostic + ")";
    if (resplit) {
      report.notes.push_back(what + "; re-split into parts of at most " + std::to_string(*resplit) +
                             " bytes, sent again now");
    } else if (b.permanent()) {
      report.problems.push_back(what +
                                "; it is tried again after resend_timeout; fix the cause "
                                "(address, server limits), then run sqlpost resend");
      report.worst = Errc::kPermanent;
    } else {
      report.notes.push_back(what + "; the server goes on trying");
    }
    event({.partner = partner.name,
           .event = "bounced",
           .seq = static_cast<std::int64_t>(b.original.sequence),
           .part = static_cast<std::int64_t>(b.original.part),
           .parts = static_cast<std::int64_t>(b.original.parts),
           .detail = b.status + " " + b.diagnostic});
  }

  Result<> record_bounce(const std::string& site, std::int64_t seq, std::int64_t part,
                         const transport::Bounce& b, std::optional<std::int64_t> resplit) {
    constexpr std::int64_t kBouncesKept = 1000;
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("INSERT INTO sqlpost_bounces(site, seq, part, received_at, "
                                 "action, status, diagnostic, resplit_to) VALUES (?, ?, ?, ?, ?, "
                                 "?, ?, ?)"));
    st->bind(1, site).bind(2, seq).bind(3, part).bind(4, now());
    st->bind(5, b.action).bind(6, b.status).bind(7, b.diagnostic.substr(0, 1000));
    st->bind(8, resplit ? Value(*resplit) : Value());
    SQLPOST_TRY(st->run());
    SQLPOST_TRY_ASSIGN(Statement * cap,
                       db.cached("DELETE FROM sqlpost_bounces WHERE id <= (SELECT max(id) FROM "
                                 "sqlpost_bounces) - ?"));
    cap->bind(1, kBouncesKept);
    return cap->run();
  }

  Result<> hold_part(const std::string& site, std::int64_t seq, std::int64_t part) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("UPDATE sqlpost_outbox SET last_sent_at = ? WHERE site = ? AND "
                                 "seq = ? AND part = ?"));
    st->bind(1, now()).bind(2, site).bind(3, seq).bind(4, part);
    return st->run();
  }

  // The message is encoded again at half the bounced part's size (not below the
  // codec's minimum), and the partner's later messages use that size too. Nothing
  // to do when the part was acknowledged meanwhile, belongs to an encoding already
  // replaced (another part of it bounced first) or cannot get smaller.
  Result<std::optional<std::int64_t>> resplit_smaller(const std::string& site,
                                                      const transport::PartHeader& bounced_part) {
    const auto seq = static_cast<std::int64_t>(bounced_part.sequence);
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("SELECT length(mail) FROM sqlpost_outbox WHERE site = ? AND "
                                 "seq = ? AND part = ? AND parts = ?"));
    st->bind(1, site).bind(2, seq).bind(3, static_cast<std::int64_t>(bounced_part.part));
    st->bind(4, static_cast<std::int64_t>(bounced_part.parts));
    SQLPOST_TRY_ASSIGN(const bool row, st->step());
    const std::int64_t bounced = row ? st->column_int(0) : 0;
    st->reset();
    const auto floor = static_cast<std::int64_t>(transport::kMinMaxMessageBytes);
    const std::int64_t smaller = std::max(floor, bounced / 2);
    if (!row || smaller >= bounced) {
      return std::optional<std::int64_t>();
    }
    SQLPOST_TRY_ASSIGN(Statement * limit,
                       db.cached("INSERT OR REPLACE INTO sqlpost_meta(key, value) VALUES (?, ?)"));
    limit->bind(1, kSizeLimitKey + site).bind(2, smaller);
    SQLPOST_TRY(limit->run());
    SQLPOST_TRY(reencode_outbox(db, site, seq, static_cast<std::size_t>(smaller)));
    return std::optional<std::int64_t>(smaller);
  }

  static constexpr const char* kSizeLimitKey = "max_message_bytes.";

  // max_message_bytes, or less for a partner whose server refused larger mail.
  std::size_t max_message_bytes_for(const std::string& site) {
    auto st = db.cached("SELECT value FROM sqlpost_meta WHERE key = ?");
    if (!st.ok()) {
      return options.max_message_bytes;
    }
    (*st)->bind(1, kSizeLimitKey + site);
    auto row = (*st)->step();
    const std::int64_t learned = row.ok() && row.value() ? (*st)->column_int(0) : 0;
    (*st)->reset();
    return learned > 0 ? std::min(options.max_message_bytes, static_cast<std::size_t>(learned))
                       : options.max_message_bytes;
  }

  // ---- acknowledgements and resend requests

  Result<> process_ack(const Partner& partner, const Payload& payload) {
    SQLPOST_TRY_ASSIGN(const std::string hopeless,
                       note_partner_cannot_recover(db, partner, payload));
    if (!hopeless.empty()) {
      report.problems.push_back(hopeless);
      report.worst = Errc::kNotFound;
      event({.partner = partner.name, .event = "restored", .detail = hopeless});
    }
    SQLPOST_TRY_ASSIGN(const bool stuck, recovery_needs_extract(db, partner.name));
    // Once only re-extraction helps, the same evidence must not start recovery again.
    SQLPOST_TRY_ASSIGN(
        const std::string evidence,
        stuck ? Result<std::string>(std::string()) : own_restore_evidence(db, partner, payload));
    if (!evidence.empty()) {
      SQLPOST_TRY_ASSIGN(const std::string summary,
                         begin_own_recovery(db, partner, payload, evidence));
      report.notes.push_back(summary);
      event({.partner = partner.name, .event = "restored", .detail = summary});
      return success();
    }
    SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
    const auto ack = static_cast<std::int64_t>(payload.ack);
    if (ack >= s.next_seq) {
      report.notes.push_back("site " + partner.name + " acknowledges message " +
                             std::to_string(ack) + " but only " + std::to_string(s.next_seq - 1) +
                             " were sent; ignoring (was this site restored from a backup?)");
    } else if (ack > s.acked_seq) {
      SQLPOST_TRY(note_acknowledged(partner, s.acked_seq, ack));
      SQLPOST_TRY(streams.set_acked(partner.name, ack));
      SQLPOST_TRY_ASSIGN(Statement * del,
                         db.cached("DELETE FROM sqlpost_outbox WHERE site = ? AND seq <= ?"));
      del->bind(1, partner.name).bind(2, ack);
      SQLPOST_TRY(del->run());
    }
    if (payload.resend_from > 0) {
      SQLPOST_TRY(schedule_resend(partner, static_cast<std::int64_t>(payload.resend_from)));
    }
    return success();
  }

  // The message log's "acknowledged": how many messages, and the seconds from
  // writing the newest of them to its acknowledgement (the partner's lag).
  Result<> note_acknowledged(const Partner& partner, std::int64_t before, std::int64_t ack) {
    SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT min(created_at) FROM sqlpost_outbox "
                                                 "WHERE site = ? AND seq = ?"));
    st->bind(1, partner.name).bind(2, ack);
    SQLPOST_TRY(st->step());
    const std::int64_t written = st->column_is_null(0) ? 0 : st->column_int(0);
    st->reset();
    event({.partner = partner.name,
           .event = "acknowledged",
           .seq = ack,
           .changes = ack - before,
           .lag = written > 0 ? std::max<std::int64_t>(0, now() - written) : 0,
           .detail = {}});
    return success();
  }

  Result<> schedule_resend(const Partner& partner, std::int64_t from) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("UPDATE sqlpost_outbox SET last_sent_at = NULL WHERE site = ? "
                                 "AND seq >= ? AND last_sent_at <= ?"));
    st->bind(1, partner.name).bind(2, from).bind(3, now() - options.resend_interval);
    SQLPOST_TRY(st->run());
    // Sent within resend_interval: queued, due when the interval is over.
    SQLPOST_TRY_ASSIGN(Statement * queue,
                       db.cached("UPDATE sqlpost_outbox SET last_sent_at = min(last_sent_at, "
                                 "last_sent_at + ?4 - ?5) WHERE site = ?1 AND seq >= ?2 AND "
                                 "last_sent_at > ?3"));
    queue->bind(1, partner.name).bind(2, from).bind(3, now() - options.resend_interval);
    queue->bind(4, options.resend_interval).bind(5, options.resend_timeout);
    SQLPOST_TRY(queue->run());
    if (db.changes() > 0) {
      report.notes.push_back("site " + partner.name + " asks for message " + std::to_string(from) +
                             " again within resend_interval (" +
                             std::to_string(options.resend_interval) + " s) of the last send; " +
                             std::to_string(db.changes()) +
                             " part(s) queued, sent again when the interval is over");
    }
    SQLPOST_TRY_ASSIGN(Statement * oldest,
                       db.cached("SELECT min(seq) FROM sqlpost_outbox WHERE site = ?"));
    oldest->bind(1, partner.name);
    SQLPOST_TRY_ASSIGN(const bool row, oldest->step());
    const std::int64_t first = row && !oldest->column_is_null(0) ? oldest->column_int(0) : 0;
    oldest->reset();
    if (first == 0 || first > from) {
      // Usually a late, stale request (an ack-only message overtaken by a newer
      // acknowledgement). If the partner was restored from a backup, our answer
      // (which says what it acknowledged) lets it find out and recover.
      report.notes.push_back("site " + partner.name + " asks for message " + std::to_string(from) +
                             ", which it has acknowledged since; answering with what it "
                             "acknowledged (if it was restored from a backup, it recovers)");
      SQLPOST_TRY(streams.mark_ack_owed(partner.name));
    }
    return success();
  }

  // ---- apply

  Result<std::vector<transport::OpenedPart>> open_inbox_parts(const Partner& partner,
                                                              const InboxMessage& message) {
    SQLPOST_TRY_ASSIGN(const transport::Key key, key_of(partner));
    SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT mail FROM sqlpost_inbox WHERE site = ? "
                                                "AND seq = ? AND digest = ? ORDER BY part"));
    st.bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
    std::vector<transport::OpenedPart> parts;
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool row, st.step());
      if (!row) {
        break;
      }
      SQLPOST_TRY_ASSIGN(transport::OpenedPart part,
                         transport::open_part(blob_text(st.column(0)), key, local.name));
      parts.push_back(std::move(part));
    }
    return parts;
  }

  // The complete messages from `site` numbered first..last, by number and arrival
  // (at most `limit`).
  Result<std::vector<InboxMessage>> complete_messages(const std::string& site, std::int64_t first,
                                                      std::int64_t last, std::int64_t limit) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("SELECT seq, digest FROM sqlpost_inbox WHERE site = ? AND seq "
                                 "BETWEEN ? AND ? GROUP BY seq, digest HAVING count(*) >= "
                                 "max(parts) ORDER BY seq, min(received_at) LIMIT ?"));
    st->bind(1, site).bind(2, first).bind(3, last).bind(4, limit);
    return st->rows([](const Statement& row) {
      return InboxMessage{row.column_int(0), as_blob(blob_text(row.column(1)))};
    });
  }

  // The compressed payload of the parts, decompressed no further than its budget
  // (payload.h: a small message never decodes into something big).
  Result<std::vector<std::uint8_t>> decode_bounded(std::vector<transport::OpenedPart> parts) {
    const std::size_t compressed =
        parts.empty() ? 0 : static_cast<std::size_t>(parts.front().compressed_size);
    budget_ = decode_budget(compressed, options.decode_limits.max_decode_bytes);
    return transport::reassemble(std::move(parts), budget_);
  }

  [[nodiscard]] DecodeLimits limits_for(std::size_t /*decoded_bytes*/) const {
    DecodeLimits limits = options.decode_limits;
    limits.memory_budget = std::min(limits.memory_budget, budget_);
    return limits;
  }

  struct LoadedMessage {
    Payload payload;
    std::vector<std::uint8_t> identity;  // message_identity() of its payload
  };

  Result<LoadedMessage> load_message(const Partner& partner, const InboxMessage& message) {
    SQLPOST_TRY_ASSIGN(auto parts, open_inbox_parts(partner, message));
    SQLPOST_TRY_ASSIGN(const auto bytes, decode_bounded(std::move(parts)));
    SQLPOST_TRY_ASSIGN(Payload payload, decode_payload(bytes, limits_for(bytes.size())));
    if (payload.kind != PayloadKind::kData) {
      return make_error(Errc::kCorruption, "a sequenced message is not a data message");
    }
    return LoadedMessage{std::move(payload), message_identity(bytes)};
  }

  // Does message `seq` continue the partner's stream we applied? A message that
  // names another predecessor comes from a timeline of the partner we did not
  // follow (it was restored from a backup and sent on): it is dropped, and our
  // acknowledgement (naming what we applied) lets the partner find out and recover.
  Result<bool> follows_applied(const Partner& partner, const InboxMessage& message,
                               const LoadedMessage& loaded) {
    const Payload& payload = loaded.payload;
    const std::int64_t seq = message.seq;
    if (payload.prev_digest.empty()) {
      return true;  // an older sender, or a predecessor it no longer knows
    }
    SQLPOST_TRY_ASSIGN(const auto applied, applied_identity(db, partner.name));
    if (applied.empty() || applied == payload.prev_digest) {
      return true;
    }
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY(delete_inbox_message(partner, message));
    SQLPOST_TRY(remember_abandoned(partner, loaded.identity));
    const std::string why = "message " + std::to_string(seq) + " from " + partner.name +
                            " does not follow its message " + std::to_string(seq - 1) +
                            " applied here: that site went back in time (restored from a "
                            "backup?); dropped, and our acknowledgement tells it to recover";
    SQLPOST_TRY(streams.mark_ack_owed(partner.name));
    SQLPOST_TRY(streams.wait_for_partner_recovery(partner.name, why));
    SQLPOST_TRY(tx.commit());
    report.notes.push_back(why);
    event({.partner = partner.name, .event = "duplicate", .seq = seq, .detail = why});
    return false;
  }

  // The identities of the partner's messages dropped as not continuing its stream
  // (the newest kMaxAbandonedKept): a message naming one of them as its predecessor
  // is of the same abandoned timeline, and nothing the partner sends later can be.
  Result<> remember_abandoned(const Partner& partner, std::span<const std::uint8_t> identity) {
    constexpr std::int64_t kMaxAbandonedKept = 64;
    SQLPOST_TRY_ASSIGN(Statement * add,
                       db.cached("INSERT OR REPLACE INTO sqlpost_abandoned(site, digest, at) "
                                 "SELECT ?1, ?2, ifnull(max(at), 0) + 1 FROM sqlpost_abandoned "
                                 "WHERE site = ?1"));
    add->bind(1, partner.name).bind(2, Value(Blob{{identity.begin(), identity.end()}}));
    SQLPOST_TRY(add->run());
    SQLPOST_TRY_ASSIGN(Statement * trim,
                       db.cached("DELETE FROM sqlpost_abandoned WHERE site = ?1 AND at <= (SELECT "
                                 "max(at) FROM sqlpost_abandoned WHERE site = ?1) - ?2"));
    trim->bind(1, partner.name).bind(2, kMaxAbandonedKept);
    return trim->run();
  }

  Result<bool> follows_abandoned(const Partner& partner, const Payload& payload) {
    SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT count(*) FROM sqlpost_abandoned WHERE "
                                                 "site = ? AND digest = ?"));
    st->bind(1, partner.name)
        .bind(2, Value(Blob{{payload.prev_digest.begin(), payload.prev_digest.end()}}));
    SQLPOST_TRY(st->step());
    const bool found = st->column_int(0) > 0;
    st->reset();
    return found;
  }

  // A message waiting behind a gap whose predecessor was abandoned: its own
  // predecessor will never come.
  Result<> drop_abandoned(const Partner& partner, const InboxMessage& message,
                          const LoadedMessage& loaded) {
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY(delete_inbox_message(partner, message));
    SQLPOST_TRY(remember_abandoned(partner, loaded.identity));
    SQLPOST_TRY(tx.commit());
    const std::string why = "message " + std::to_string(message.seq) + " from " + partner.name +
                            " follows one it abandoned (restored from a backup); dropped";
    report.notes.push_back(why);
    event({.partner = partner.name, .event = "duplicate", .seq = message.seq, .detail = why});
    return success();
  }

  Result<> delete_inbox_message(const Partner& partner, const InboxMessage& message) {
    SQLPOST_TRY_ASSIGN(Statement * del, db.cached("DELETE FROM sqlpost_inbox WHERE site = ? AND "
                                                  "seq = ? AND digest = ?"));
    del->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
    return del->run();
  }

  Result<> discard_message(const Partner& partner, const InboxMessage& message,
                           const std::string& why) {
    const std::int64_t seq = message.seq;
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY_ASSIGN(Statement st,
                       db.prepare("INSERT INTO sqlpost_rejected(received_at, claimed_sender, "
                                  "reason, mail) SELECT ?, site, ?, substr(mail, 1, ?) FROM "
                                  "sqlpost_inbox WHERE site = ? AND seq = ? AND digest = ? "
                                  "ORDER BY part"));
    st.bind(1, now()).bind(2, why).bind(3, static_cast<std::int64_t>(kMaxRejectedMailKept));
    st.bind(4, partner.name).bind(5, seq).bind(6, Value(message.digest));
    SQLPOST_TRY(st.run());
    SQLPOST_TRY(delete_inbox_message(partner, message));
    SQLPOST_TRY(streams.count_rejected(partner.name));
    SQLPOST_TRY(cap_rejected(db, now()));
    SQLPOST_TRY(tx.commit());
    event({.partner = partner.name, .event = "rejected", .seq = seq, .detail = why});
    return success();
  }

  Result<> halt(const Partner& partner, const Error& e) {
    const bool refused = e.code == Errc::kAuthentication;
    report.problems.push_back(
        "stopped applying messages from " + partner.name + ": " + e.message +
        (refused ? " (the message stays in the inbox; find out why that site sends it: a "
                   "stolen or compromised machine, or a subscription changed here)"
                 : " (fix the schema, then run again)"));
    report.worst = e.code;
    event({.partner = partner.name, .event = "stopped", .detail = e.message});
    return streams.halt(partner.name, e.message);
  }

  // A site decides the conflicts of changes from its children and follows its parent.
  Result<ApplyContext> apply_context(const Partner& partner) {
    ApplyContext context;
    context.local_site = local.name;
    context.from_site = partner.name;
    context.decides = partner.relation == Relation::kChild;
    context.now = now();
    SQLPOST_TRY_ASSIGN(const auto articles, load_articles(db));
    for (const auto& a : articles) {
      SQLPOST_TRY_ASSIGN(ConflictPolicy policy, parse_conflict_policy(a.conflict));
      context.policies.emplace(a.table, std::move(policy));
    }
    // What the partner may change is this site's own decision (docs/security.md).
    SQLPOST_TRY_ASSIGN(context.authorization, authorization_for(db, partner));
    if (partner.relation == Relation::kChild) {
      SQLPOST_TRY_ASSIGN(context.subset, SubsetFilter::load(db, partner));
    }
    return context;
  }

  // The last epoch of ours the partner had applied when it built a message with `ack`.
  Result<std::int64_t> epoch_seen_by(const Partner& partner, std::uint64_t ack) {
    if (ack == 0) {
      return std::int64_t{0};
    }
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("SELECT coalesce((SELECT max(to_epoch) FROM sqlpost_sent WHERE "
                                 "site = ?1 AND seq <= ?2), (SELECT min(from_epoch) FROM "
                                 "sqlpost_sent WHERE site = ?1), ?3)"));
    st->bind(1, partner.name).bind(2, static_cast<std::int64_t>(ack)).bind(3, partner.sent_epoch);
    SQLPOST_TRY(st->step());
    const std::int64_t epoch = st->column_int(0);
    st->reset();
    return epoch;
  }

  // Columns this site changed (itself or through its children) after `seen_epoch`.
  Result<std::set<std::string>> pending_columns(const Partner& parent, std::int64_t seen_epoch) {
    std::set<std::string> pending;
    SQLPOST_TRY_ASSIGN(const auto tables, tables_routed_to(db, parent));
    SQLPOST_TRY(read_changes_since(db, seen_epoch, tables, [&](const Change& c) {
      if (c.origin == parent.name || is_article_rows_origin(c.origin)) {  // not changes of ours
        return success();
      }
      const Row key = c.key();
      if (c.op == ChangeOp::kDelete) {
        pending.insert(row_column_key(c.table(), key, "*"));
        pending.erase(row_column_key(c.table(), key, "+"));
        return success();
      }
      if (c.op == ChangeOp::kInsert) {
        pending.erase(row_column_key(c.table(), key, "*"));
        pending.insert(row_column_key(c.table(), key, "+"));  // a row the parent has not seen
        for (std::size_t i = c.layout->key_count; i < c.layout->columns.size(); ++i) {
          pending.insert(row_column_key(c.table(), key, c.layout->columns[i]));
        }
        return success();
      }
      for (const auto i : c.changed_columns()) {
        pending.insert(row_column_key(c.table(), key, c.layout->columns[i]));
      }
      return success();
    }));
    return pending;
  }

  Result<> apply_in_transaction(const Partner& partner, std::int64_t seq,
                                const LoadedMessage& message) {
    const Payload& payload = message.payload;
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY_ASSIGN(OriginMark mark, OriginMark::set(db, partner.name));
    SQLPOST_TRY_ASSIGN(ApplyContext context, apply_context(partner));
    if (partner.relation == Relation::kParent) {
      SQLPOST_TRY_ASSIGN(const std::int64_t seen, epoch_seen_by(partner, payload.ack));
      SQLPOST_TRY_ASSIGN(context.pending, pending_columns(partner, seen));
    }
    SQLPOST_TRY_ASSIGN(const ApplyStats stats, apply_payload(db, payload, context));
    SQLPOST_TRY(process_ack(partner, payload));
    SQLPOST_TRY(keep_health_from(partner, payload));
    SQLPOST_TRY(streams.note_seen_ack(partner.name, static_cast<std::int64_t>(payload.ack)));
    SQLPOST_TRY(streams.record_applied_seq(partner.name, seq));
    SQLPOST_TRY(record_applied(db, partner.name, seq, message.identity));
    if (payload.restored_from > 0) {
      SQLPOST_TRY_ASSIGN(const PartnerRecovery recovery,
                         serve_partner_restore(db, partner, payload, seq));
      if (recovery.needs_extract) {
        report.problems.push_back(recovery.summary);
        report.worst = Errc::kNotFound;
      } else {
        report.notes.push_back(recovery.summary);
      }
      event({.partner = partner.name, .event = "restored", .seq = seq, .detail = recovery.summary});
    }
    SQLPOST_TRY_ASSIGN(Statement * del,
                       db.cached("DELETE FROM sqlpost_inbox WHERE site = ? AND seq <= ?"));
    del->bind(1, partner.name).bind(2, seq);
    SQLPOST_TRY(del->run());
    SQLPOST_TRY(mark.clear());
    SQLPOST_TRY(crash_point("before-apply-commit"));
    SQLPOST_TRY(tx.commit());
    ++report.messages_applied;
    event({.partner = partner.name,
           .event = "applied",
           .seq = seq,
           .changes = static_cast<std::int64_t>(stats.inserted + stats.updated + stats.deleted +
                                                stats.missing),
           .conflicts = static_cast<std::int64_t>(stats.conflicts),
           .detail = {}});
    report.details.push_back("applied message " + std::to_string(seq) + " from " + partner.name +
                             ": " + std::to_string(stats.inserted) + " inserted, " +
                             std::to_string(stats.updated) + " updated, " +
                             std::to_string(stats.deleted) + " deleted, " +
                             std::to_string(stats.missing) + " missing rows");
    if (stats.refused > 0) {
      // Also a race (the row moved away here meanwhile), hence a note, not a problem.
      report.notes.push_back(std::to_string(stats.refused) + " change(s) in message " +
                             std::to_string(seq) + " from " + partner.name +
                             " touched rows outside its subset and were not applied "
                             "(sqlpost conflicts DB)");
    }
    if (stats.conflicts > 0) {
      report.notes.push_back(std::to_string(stats.conflicts) + " conflict(s) in message " +
                             std::to_string(seq) + " from " + partner.name +
                             " recorded (sqlpost conflicts DB)");
    }
    report.changes_applied += stats.inserted + stats.updated + stats.deleted + stats.missing;
    return success();
  }

  // Does the message name `identity` (the message applied last) as its predecessor?
  bool continues(const Partner& partner, const InboxMessage& message,
                 const std::vector<std::uint8_t>& identity) {
    auto loaded = load_message(partner, message);
    return loaded.ok() && loaded->payload.prev_digest == identity;
  }

  // The message to apply next (none yet: nullopt): applied_seq + 1 when complete
  // (of two under that number, the one that continues what was applied), else the
  // first later complete message that names the one applied last as its
  // predecessor. A partner that regenerates its stream after a restore numbers on
  // instead of reusing numbers, so mail of the abandoned numbering still in flight
  // can never be taken for the new one.
  Result<std::optional<InboxMessage>> next_applicable(const Partner& partner,
                                                      std::int64_t applied) {
    SQLPOST_TRY_ASSIGN(const auto next, complete_messages(partner.name, applied + 1, applied + 1,
                                                          kMaxMessagesPerNumber));
    if (next.size() == 1) {
      return std::optional<InboxMessage>{next.front()};
    }
    SQLPOST_TRY_ASSIGN(const auto identity, applied_identity(db, partner.name));
    if (!next.empty()) {
      const auto found = std::ranges::find_if(
          next, [&](const InboxMessage& m) { return continues(partner, m, identity); });
      // None does: follows_applied() drops the first.
      return std::optional<InboxMessage>{found == next.end() ? next.front() : *found};
    }
    if (identity.empty()) {
      return std::optional<InboxMessage>{};
    }
    // Bounded: the abandoned numbers still in flight are few; a long normal gap is
    // not decoded over and over.
    constexpr std::int64_t kMaxCandidates = 16;
    SQLPOST_TRY_ASSIGN(const auto later,
                       complete_messages(partner.name, applied + 2,
                                         std::numeric_limits<std::int64_t>::max(), kMaxCandidates));
    for (const InboxMessage& candidate : later) {
      auto loaded = load_message(partner, candidate);
      if (!loaded.ok()) {
        continue;  // set aside when its turn comes
      }
      SQLPOST_TRY_ASSIGN(const bool stale, follows_abandoned(partner, loaded->payload));
      if (stale) {
        SQLPOST_TRY(drop_abandoned(partner, candidate, loaded.value()));
        continue;
      }
      if (loaded->payload.prev_digest == identity) {
        report.notes.push_back("message " + std::to_string(candidate.seq) + " from " +
                               partner.name + " continues its message " + std::to_string(applied) +
                               " applied here (the numbers in between were abandoned after a "
                               "restore from a backup)");
        return std::optional<InboxMessage>{candidate};
      }
    }
    return std::optional<InboxMessage>{};  // a gap, or only messages the partner abandoned
  }

  // Applies the next message from partner if complete; true when one was applied
  // or dropped (look again).
  Result<bool> apply_next(const Partner& partner) {
    SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
    SQLPOST_TRY_ASSIGN(const auto next, next_applicable(partner, s.applied_seq));
    if (!next) {
      return false;
    }
    const std::int64_t seq = next->seq;
    auto payload = load_message(partner, *next);
    if (!payload.ok() && payload.error().code == Errc::kUnsupported) {
      SQLPOST_TRY(halt(partner, payload.error()));  // a newer sqlpost: keep it, stop here
      return false;
    }
    if (payload.ok()) {
      SQLPOST_TRY_ASSIGN(const bool follows, follows_applied(partner, *next, payload.value()));
      if (!follows) {
        return true;  // dropped: another message under that number, or one after it
      }               // that follows the dropped one, may be waiting
    }
    if (!payload.ok()) {
      // Set aside (sqlpost_rejected), never retried: it would fail the same way.
      note(report, payload.error(),
           "message " + std::to_string(seq) + " from " + partner.name +
               " set aside in sqlpost_rejected");
      // Whatever the cause (limits, parts of different messages, bad CBOR): received
      // input was rejected, exit code 5.
      report.worst = Errc::kCorruption;
      SQLPOST_TRY(discard_message(partner, *next, payload.error().message));
      return false;
    }
    auto applied = apply_in_transaction(partner, seq, payload.value());
    if (!applied.ok()) {
      if (applied.error().message.rfind("injected crash", 0) == 0) {
        return applied.take_error();
      }
      SQLPOST_TRY(halt(partner, applied.error()));
      return false;
    }
    return true;
  }

  Result<> watch_gap(const Partner& partner) {
    SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
    // Any part waiting — of a later message, or only some parts of the next one
    // (also the newest) — means applied_seq + 1 is incomplete: a gap.
    SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT count(*) FROM sqlpost_inbox WHERE site "
                                                 "= ? AND seq > ?"));
    st->bind(1, partner.name).bind(2, s.applied_seq);
    SQLPOST_TRY(st->step());
    const bool waiting = st->column_int(0) > 0;
    st->reset();
    if (!waiting || !s.halted.empty()) {
      return success();
    }
    if (s.gap_since == 0) {
      return streams.set_gap_since(partner.name, now());
    }
    const bool patient_enough = now() - s.gap_since >= options.gap_patience;
    const bool not_too_often =
        s.resend_requested_at == 0 || now() - s.resend_requested_at >= options.resend_interval;
    if (patient_enough && not_too_often && s.resend_from == 0) {
      report.notes.push_back("message " + std::to_string(s.applied_seq + 1) + " from " +
                             partner.name + " is missing; asking for a resend");
      return streams.set_resend_from(partner.name, s.applied_seq + 1);
    }
    return success();
  }

  // ---- prepare and send

  // A partner's messages are committed together with the other partners' (a commit
  // per partner made an idle 1,000-site pass cost 1,000 disk flushes), each in its own
  // savepoint: a partner whose message cannot be prepared is reported and left out,
  // the others go on. The batch is committed once it holds kOutboxBatchBytes, so the
  // write lock is held for short steps. A partner with nothing new writes nothing.
  static constexpr std::int64_t kOutboxBatchBytes = 4 << 20;

  Result<> prepare_for(const Partner& partner, Payload payload, std::int64_t closed) {
    if (payload.change_count() == 0 && partner.sent_epoch >= closed) {
      SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
      if (s.restore_request == 0) {
        return success();  // nothing new, no restore request: nothing to write
      }
    }
    if (!batch) {
      SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
      batch.emplace(std::move(tx));
    }
    SQLPOST_TRY_ASSIGN(Savepoint step, Savepoint::begin(db));
    auto stored = store_outgoing(partner, std::move(payload), closed);
    if (!stored.ok()) {
      if (is_database_failure(stored.error().code)) {
        return stored;
      }
      note(report, stored.error(),
           "preparing a message for " + partner.name +
               " (nothing of it was written; the other partners go on)");
      return success();  // `step` rolls back what this partner wrote
    }
    SQLPOST_TRY(step.release());
    return batch_bytes >= kOutboxBatchBytes ? commit_outbox_batch() : success();
  }

  Result<> commit_outbox_batch() {
    if (!batch) {
      return success();
    }
    Transaction tx = std::move(*batch);
    batch.reset();
    batch_bytes = 0;
    SQLPOST_TRY(crash_point("before-outbox-commit"));
    SQLPOST_TRY(tx.commit());
    return crash_point("after-outbox-commit");
  }

  // One transaction is one message: a message over this site's own limits.max_changes
  // will be set aside by a partner that uses the same limit (docs/security.md).
  void warn_if_over_limits(const Partner& partner, std::int64_t seq, std::size_t changes) {
    if (changes > options.decode_limits.max_changes) {
      report.notes.push_back(
          "message " + std::to_string(seq) + " to " + partner.name + " carries " +
          std::to_string(changes) + " changes, more than limits.max_changes (" +
          std::to_string(options.decode_limits.max_changes) + "); unless " + partner.name +
          " allows that many, it will set the message aside: raise "
          "limits.max_changes there");
    }
  }

  // One partner's message (when it has changes) and its sent epoch, in the batch.
  Result<> store_outgoing(const Partner& partner, Payload payload, std::int64_t closed) {
    SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
    // A restore request goes in a message of its own if there are no changes to carry.
    if (payload.change_count() > 0 || s.restore_request > 0) {
      payload.ack = static_cast<std::uint64_t>(s.applied_seq);
      payload.resend_from = static_cast<std::uint64_t>(s.resend_from);
      SQLPOST_TRY(add_health_for(partner, payload));
      SQLPOST_TRY(add_restore_fields(partner, s, payload));
      SQLPOST_TRY_ASSIGN(const std::vector<std::uint8_t> previous,
                         chain_identity(db, partner.name, s.next_seq));
      payload.prev_digest = previous;
      payload.restored_from = static_cast<std::uint64_t>(s.restore_request);
      SQLPOST_TRY_ASSIGN(const transport::Key key, key_of(partner));
      const auto bytes = encode_payload(payload);
      SQLPOST_TRY_ASSIGN(
          const auto mails,
          transport::encode_message(
              {local.name, partner.name, static_cast<std::uint64_t>(s.next_seq)}, local.address,
              partner.address, bytes, key, max_message_bytes_for(partner.name)));
      SQLPOST_TRY(insert_outbox(partner.name, s.next_seq, mails));
      warn_if_over_limits(partner, s.next_seq, payload.change_count());
      std::int64_t bytes_written = 0;
      for (const auto& m : mails) {
        bytes_written += static_cast<std::int64_t>(m.size());
      }
      batch_bytes += bytes_written;
      event({.partner = partner.name,
             .event = "prepared",
             .seq = s.next_seq,
             .parts = static_cast<std::int64_t>(mails.size()),
             .bytes = bytes_written,
             .changes = static_cast<std::int64_t>(payload.change_count()),
             .detail = {}});
      SQLPOST_TRY(forget_decided_rows(db, partner.name));
      SQLPOST_TRY_ASSIGN(Statement * sent,
                         db.cached("INSERT OR REPLACE INTO sqlpost_sent(site, seq, from_epoch, "
                                   "to_epoch, digest) VALUES (?, ?, ?, ?, ?)"));
      sent->bind(1, partner.name).bind(2, s.next_seq).bind(3, partner.sent_epoch).bind(4, closed);
      sent->bind(5, Value(Blob{message_identity(bytes)}));
      SQLPOST_TRY(sent->run());
      SQLPOST_TRY(streams.record_prepared(partner.name, s.resend_from > 0, now()));
      ++report.messages_prepared;
    }
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("UPDATE sqlpost_sites SET sent_epoch = ? WHERE name = ?"));
    st->bind(1, closed).bind(2, partner.name);
    SQLPOST_TRY(st->run());
    // An echo window (replication/restore.h) ends once a message covered it.
    return streams.end_echo_window(partner.name, closed);
  }

  // What the partner needs to notice that it went back in time: the identity of
  // its message we applied last, and the highest of ours it acknowledged.
  Result<> add_restore_fields(const Partner& partner, const Stream& s, Payload& payload) {
    SQLPOST_TRY_ASSIGN(payload.ack_digest, applied_identity(db, partner.name));
    payload.confirmed = static_cast<std::uint64_t>(s.acked_seq);
    SQLPOST_TRY_ASSIGN(payload.reextract, partner_needs_extract(db, partner.name));
    return success();
  }

  Result<> insert_outbox(const std::string& site, std::int64_t seq,
                         const std::vector<std::string>& mails) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("INSERT INTO sqlpost_outbox(site, seq, part, parts, mail, "
                                 "created_at) VALUES (?, ?, ?, ?, ?, ?)"));
    for (std::size_t i = 0; i < mails.size(); ++i) {
      st->bind(1, site).bind(2, seq).bind(3, static_cast<std::int64_t>(i + 1));
      st->bind(4, static_cast<std::int64_t>(mails.size()));
      st->bind(5, Value(as_blob(mails[i]))).bind(6, now());
      SQLPOST_TRY(st->run());
    }
    return success();
  }

  struct OutboxPart {
    std::int64_t seq;
    std::int64_t part;
    std::string mail;
    std::int64_t parts = 1;
    std::int64_t sent_count = 0;
  };

  Result<std::vector<OutboxPart>> due_parts(const std::string& site) {
    SQLPOST_TRY_ASSIGN(Statement st,
                       db.prepare("SELECT seq, part, mail, parts, sent_count FROM sqlpost_outbox "
                                  "WHERE site = ? AND "
                                  "(last_sent_at IS NULL OR last_sent_at <= ?) ORDER BY seq, "
                                  "part"));
    st.bind(1, site).bind(2, now() - options.resend_timeout);
    std::vector<OutboxPart> parts;
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool row, st.step());
      if (!row) {
        break;
      }
      parts.push_back({st.column_int(0), st.column_int(1), blob_text(st.column(2)),
                       st.column_int(3), st.column_int(4)});
    }
    return parts;
  }

  // A permanent refusal (5xx: unknown recipient, message too big) is not retried
  // every run: the part waits resend_timeout, and the report says what to fix.
  Result<> hold_refused_part(const Partner& partner, const OutboxPart& p, const Error& refusal) {
    report.problems.push_back(
        "the mail server refused message " + std::to_string(p.seq) + " part " +
        std::to_string(p.part) + " to " + partner.name + " <" + partner.address +
        "> permanently (" + refusal.message +
        "); it stays in the outbox and is tried again after resend_timeout (" +
        std::to_string(options.resend_timeout) +
        " s); check the partner's address and the server's size limit (max_message_bytes), "
        "then run sqlpost resend to try at once");
    report.worst = refusal.code;
    event({.partner = partner.name,
           .event = "refused",
           .seq = p.seq,
           .part = p.part,
           .parts = p.parts,
           .bytes = static_cast<std::int64_t>(p.mail.size()),
           .detail = refusal.message});
    return record_after_send([this, site = partner.name, seq = p.seq, part = p.part,
                              at = now()]() -> Result<> {
      SQLPOST_TRY_ASSIGN(Statement * st,
                         db.cached("UPDATE sqlpost_outbox SET last_sent_at = ? WHERE site = ? AND "
                                   "seq = ? AND part = ?"));
      st->bind(1, at).bind(2, site).bind(3, seq).bind(4, part);
      return st->run();
    });
  }

  // What a send pass learns (parts sent, acknowledgements sent) is written in
  // batches of kSendBatch steps: a transaction per sent part made a 1,000-site pass
  // cost thousands of disk flushes, and a send must not hold the write lock while it
  // talks to a server. A crash before a batch is written only means its parts or
  // acknowledgements are sent again, and receivers drop duplicates.
  static constexpr std::size_t kSendBatch = 256;

  Result<> record_after_send(std::function<Result<>()> step) {
    after_send.push_back(std::move(step));
    return after_send.size() >= kSendBatch ? write_after_send() : success();
  }

  Result<> write_after_send() {
    if (after_send.empty()) {
      return success();
    }
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    for (const auto& step : after_send) {
      SQLPOST_TRY(step());
    }
    after_send.clear();
    return tx.commit();
  }

  Result<bool> send_outbox(const Partner& partner) {
    SQLPOST_TRY_ASSIGN(const auto parts, due_parts(partner.name));
    if (parts.empty()) {
      return true;
    }
    auto pair_key = key_of(partner);
    if (!pair_key.ok()) {
      note(report, pair_key.error(), "sending to " + partner.name + " (the outbox waits)");
      return false;
    }
    const transport::Key& key = pair_key.value();
    for (const auto& p : parts) {
      SQLPOST_TRY_ASSIGN(const std::string mail, transport::with_fresh_message_id(p.mail, key));
      auto sent = link.send(partner.address, mail);
      if (!sent.ok()) {
        ++report.send_failures;
        if (sent.error().code == Errc::kPermanent) {
          SQLPOST_TRY(hold_refused_part(partner, p, sent.error()));
          return false;
        }
        note(report, sent.error(),
             "sending message " + std::to_string(p.seq) + " part " + std::to_string(p.part) +
                 " to " + partner.name + " (kept in the outbox, retried next run)");
        event({.partner = partner.name,
               .event = "failed",
               .seq = p.seq,
               .part = p.part,
               .parts = p.parts,
               .bytes = static_cast<std::int64_t>(p.mail.size()),
               .detail = sent.error().message});
        return false;
      }
      SQLPOST_TRY(crash_point("after-send"));
      SQLPOST_TRY(record_after_send([this, site = partner.name, seq = p.seq, part = p.part,
                                     at = now()]() -> Result<> {
        SQLPOST_TRY_ASSIGN(Statement * st,
                           db.cached("UPDATE sqlpost_outbox SET sent_count = sent_count + 1, "
                                     "last_sent_at = ? WHERE site = ? AND seq = ? AND part = ?"));
        st->bind(1, at).bind(2, site).bind(3, seq).bind(4, part);
        return st->run();
      }));
      ++report.parts_sent;
      event({.partner = partner.name,
             .event = p.sent_count > 0 ? "resent" : "sent",
             .seq = p.seq,
             .part = p.part,
             .parts = p.parts,
             .bytes = static_cast<std::int64_t>(mail.size()),  // as sent: its own Message-ID
             .detail = {}});
      report.details.push_back("sent message " + std::to_string(p.seq) + " part " +
                               std::to_string(p.part) + " to " + partner.name + " <" +
                               partner.address + ">");
    }
    if (!parts.empty()) {
      SQLPOST_TRY(record_after_send(
          [this, site = partner.name, at = now()] { return streams.set_last_sent(site, at); }));
    }
    return true;
  }

  Result<> send_ack_only(const Partner& partner) {
    SQLPOST_TRY_ASSIGN(const Stream s, streams.load(partner.name));
    if (!s.ack_owed && s.resend_from == 0) {
      return success();
    }
    Payload payload;
    payload.kind = PayloadKind::kAckOnly;
    payload.ack = static_cast<std::uint64_t>(s.applied_seq);
    payload.resend_from = static_cast<std::uint64_t>(s.resend_from);
    SQLPOST_TRY(add_health_for(partner, payload));
    SQLPOST_TRY(add_restore_fields(partner, s, payload));
    SQLPOST_TRY_ASSIGN(const transport::Key key, key_of(partner));
    SQLPOST_TRY_ASSIGN(
        const auto mails,
        transport::encode_message({local.name, partner.name, 0}, local.address, partner.address,
                                  encode_payload(payload), key, options.max_message_bytes));
    std::int64_t ack_bytes = 0;
    for (const auto& encoded : mails) {
      SQLPOST_TRY_ASSIGN(const std::string mail, transport::with_fresh_message_id(encoded, key));
      auto sent = link.send(partner.address, mail);
      if (!sent.ok()) {
        ++report.send_failures;
        note(report, sent.error(), "sending an acknowledgement to " + partner.name);
        return success();
      }
      ack_bytes += static_cast<std::int64_t>(mail.size());
    }
    ++report.acks_sent;
    event({.partner = partner.name,
           .event = "sent",
           .part = 1,
           .parts = static_cast<std::int64_t>(mails.size()),
           .bytes = ack_bytes,
           .detail = "acknowledgement of #" + std::to_string(s.applied_seq) +
                     (s.resend_from > 0 ? ", resend from #" + std::to_string(s.resend_from) : "")});
    return record_after_send([this, site = partner.name, resend = s.resend_from > 0, at = now()] {
      return streams.record_ack_sent(site, resend, at);
    });
  }
};

Engine::Engine(Database& db, transport::Link& link, EngineOptions options)
    : db_(db), link_(link), options_(std::move(options)) {}

Result<> Engine::receive(RunReport& report) {
  Impl impl(db_, link_, options_, report);
  SQLPOST_TRY(impl.load());
  auto refs = link_.list();
  if (!refs.ok()) {
    note(report, refs.error(), "listing the mailbox");
    return refs.take_error();
  }
  for (const auto& ref : refs.value()) {
    SQLPOST_TRY(impl.receive_one(ref));
  }
  return success();
}

Result<> Engine::apply(RunReport& report) {
  Impl impl(db_, link_, options_, report);
  SQLPOST_TRY(impl.load());
  // A stream stopped by an error is tried again on every run (the error is reported
  // again until whoever can fix it has), so fixing the cause is all it takes.
  for (const auto& [name, partner] : impl.partners) {
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool applied, impl.apply_next(partner));
      if (!applied) {
        break;
      }
    }
    SQLPOST_TRY(impl.watch_gap(partner));
  }
  return success();
}

Result<> Engine::prepare(RunReport& report) {
  Impl impl(db_, link_, options_, report);
  SQLPOST_TRY(impl.load());
  {  // key ranges: a block used up since the last run moves on (replication/keys.h)
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db_));
    SQLPOST_TRY(seed_key_ranges(db_));
    SQLPOST_TRY(tx.commit());
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t closed, cut_epoch_if_logged(db_, impl.now()));
  std::vector<Partner> partners;
  for (const auto& [name, partner] : impl.partners) {
    partners.push_back(partner);
  }
  SQLPOST_TRY_ASSIGN(auto payloads, collect_changes_for_all(db_, partners, closed));
  for (const auto& [name, partner] : impl.partners) {
    Payload payload = std::move(payloads[name]);
    SQLPOST_TRY(append_decided_rows(db_, partner, payload, closed));
    SQLPOST_TRY(impl.prepare_for(partner, std::move(payload), closed));
  }
  SQLPOST_TRY(impl.commit_outbox_batch());
  SQLPOST_TRY_ASSIGN(const PruneSummary pruned,
                     prune_change_log(db_, impl.now(), options_.log_retention));
  if (pruned.rows > 0) {
    report.notes.push_back("pruned " + std::to_string(pruned.rows) +
                           " change log row(s) up to epoch " + std::to_string(pruned.epoch));
  }
  return success();
}

Result<> Engine::send(RunReport& report) {
  Impl impl(db_, link_, options_, report);
  SQLPOST_TRY(impl.load());
  for (const auto& [name, partner] : impl.partners) {
    SQLPOST_TRY_ASSIGN(const bool reachable, impl.send_outbox(partner));
    if (reachable) {
      SQLPOST_TRY(impl.send_ack_only(partner));
    }
  }
  return impl.write_after_send();
}

Result<> Engine::run_phases(RunReport& report, RunPhases phases) {
  if (phases.receive) {
    auto received = receive(report);  // a link failure is in the report; the run goes on
    if (!received.ok() && is_database_failure(received.error().code)) {
      return received.take_error();
    }
    SQLPOST_TRY(apply(report));
  }
  if (phases.send) {
    SQLPOST_TRY(prepare(report));
    SQLPOST_TRY(send(report));
  }
  return success();
}

Result<RunReport> Engine::run_once(RunPhases phases) {
  RunReport report;
  auto ran = run_phases(report, phases);
  if (!ran.ok()) {
    if (ran.error().code != Errc::kBusy) {
      return ran.take_error();
    }
    note(report, ran.error(),
         "the database write lock stayed taken by another connection; this run stopped "
         "there and the next run goes on (nothing is lost)");
  }
  return report;
}

namespace {

// recovery_ack: NULL needs a person; -1 waits for the partner to recover; else
// the recovery is done once the partner confirmed our messages up to it.
std::string recovery_state(const StreamState& s, std::optional<std::int64_t> recovery_ack,
                           bool request_unsent) {
  if (!recovery_ack || *recovery_ack == kThisSiteNeedsExtract) {
    return "re-extract";
  }
  if (*recovery_ack == kWaitingForPartner) {
    return "waiting for the partner";
  }
  const bool done = !request_unsent && s.acked_seq >= *recovery_ack && s.outbox_messages == 0 &&
                    s.inbox_parts == 0;
  return done ? "done" : "in progress";
}

}  // namespace

Result<std::vector<StreamState>> load_stream_states(Database& db) {
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("SELECT s.site, next_seq, acked_seq, applied_seq, (SELECT count(DISTINCT seq) "
                 "FROM sqlpost_outbox o WHERE o.site = s.site), (SELECT count(*) FROM "
                 "sqlpost_inbox i WHERE i.site = s.site), rejected, ifnull(last_sent_at, 0), "
                 "ifnull(last_received_at, 0), ifnull(halted, ''), ifnull(recovery, ''), "
                 "recovery_ack, restore_request IS NOT NULL FROM sqlpost_streams s ORDER "
                 "BY s.site"));
  std::vector<StreamState> states;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    states.push_back({st.column_text(0), st.column_int(1), st.column_int(2), st.column_int(3),
                      st.column_int(4), st.column_int(5), st.column_int(6), st.column_int(7),
                      st.column_int(8), st.column_text(9), st.column_text(10), ""});
    StreamState& s = states.back();
    if (!s.recovery.empty()) {
      s.recovery_state = recovery_state(
          s, st.column_is_null(11) ? std::optional<std::int64_t>() : st.column_int(11),
          st.column_int(12) != 0);
    }
  }
  return states;
}

}  // namespace sqlpost
