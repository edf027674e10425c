#include "replication/mail_bounces.h"

#include <algorithm>
#include <optional>

#include "replication/outbox.h"
#include "replication/rekey.h"

namespace sqlpost {
namespace {

constexpr const char* kSizeLimitKey = "max_message_bytes.";

void report_bounce(RunContext& run, const Partner& partner, const transport::Bounce& b,
                   std::optional<std::int64_t> resplit) {
  const std::string what = "message " + std::to_string(b.original.sequence) + " part " +
                           std::to_string(b.original.part) + " to " + partner.name + " <" +
                           partner.address + "> bounced (" + b.action + " " + b.status + ": " +
                           b.diagnostic + ")";
  if (resplit) {
    run.report.notes.push_back(what + "; re-split into parts of at most " +
                               std::to_string(*resplit) + " bytes, sent again now");
  } else if (b.permanent()) {
    run.report.problems.push_back(what +
                                  "; it is tried again after resend_timeout; fix the cause "
                                  "(address, server limits), then run sqlpost resend");
    run.report.worst = Errc::kPermanent;
  } else {
    run.report.notes.push_back(what + "; the server goes on trying");
  }
  run.event({.partner = partner.name,
             .event = "bounced",
             .seq = static_cast<std::int64_t>(b.original.sequence),
             .part = static_cast<std::int64_t>(b.original.part),
             .parts = static_cast<std::int64_t>(b.original.parts),
             .detail = b.status + " " + b.diagnostic});
}

Result<> record_bounce(RunContext& run, const std::string& site, std::int64_t seq,
                       std::int64_t part, const transport::Bounce& b,
                       std::optional<std::int64_t> resplit) {
  constexpr std::int64_t kBouncesKept = 1000;
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run.db.cached("INSERT INTO sqlpost_bounces(site, seq, part, received_at, "
                                   "action, status, diagnostic, resplit_to) VALUES (?, ?, ?, ?, ?, "
                                   "?, ?, ?)"));
  st->bind(1, site).bind(2, seq).bind(3, part).bind(4, run.now());
  st->bind(5, b.action).bind(6, b.status).bind(7, b.diagnostic.substr(0, 1000));
  st->bind(8, resplit ? Value(*resplit) : Value());
  SQLPOST_TRY(st->run());
  SQLPOST_TRY_ASSIGN(Statement * cap,
                     run.db.cached("DELETE FROM sqlpost_bounces WHERE id <= (SELECT max(id) FROM "
                                   "sqlpost_bounces) - ?"));
  cap->bind(1, kBouncesKept);
  return cap->run();
}

Result<> hold_part(RunContext& run, const std::string& site, std::int64_t seq, std::int64_t part) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run.db.cached("UPDATE sqlpost_outbox SET last_sent_at = ? WHERE site = ? AND "
                                   "seq = ? AND part = ?"));
  st->bind(1, run.now()).bind(2, site).bind(3, seq).bind(4, part);
  return st->run();
}

// The message is encoded again at half the bounced part's size (not below the
// codec's minimum), and the partner's later messages use that size too. Nothing
// to do when the part was acknowledged meanwhile, belongs to an encoding already
// replaced (another part of it bounced first) or cannot get smaller.
Result<std::optional<std::int64_t>> resplit_smaller(RunContext& run, const std::string& site,
                                                    const transport::PartHeader& bounced_part) {
  const auto seq = static_cast<std::int64_t>(bounced_part.sequence);
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run.db.cached("SELECT length(mail) FROM sqlpost_outbox WHERE site = ? AND "
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
  SQLPOST_TRY_ASSIGN(
      Statement * limit,
      run.db.cached("INSERT OR REPLACE INTO sqlpost_meta(key, value) VALUES (?, ?)"));
  limit->bind(1, kSizeLimitKey + site).bind(2, smaller);
  SQLPOST_TRY(limit->run());
  SQLPOST_TRY(reencode_outbox(run.db, site, seq, static_cast<std::size_t>(smaller)));
  return std::optional<std::int64_t>(smaller);
}

}  // namespace

// A delivery status notification about one of our parts (the returned Message-ID
// verifies under the pair key) is recorded and removed from the mailbox: a size
// refusal re-splits the message smaller; any other permanent refusal is a problem
// of the run and the part waits resend_timeout. Anything else stays foreign.
Result<bool> handle_bounce(RunContext& run, const transport::MailRef& ref,
                           const transport::Bounce& b) {
  const auto found = run.partners.find(b.original.receiver);
  if (b.original.sender != run.local.name || found == run.partners.end()) {
    return false;
  }
  const Partner& partner = found->second;
  auto keys = opening_keys(run.db, partner.name);  // a part may be older than a rotation
  if (!keys.ok() || std::ranges::none_of(keys->keys, [&](const transport::Key& key) {
        return transport::message_id_is_ours(b.message_id, b.original, key);
      })) {
    return false;
  }
  const auto seq = static_cast<std::int64_t>(b.original.sequence);
  const auto part = static_cast<std::int64_t>(b.original.part);
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run.db));
  std::optional<std::int64_t> resplit;
  if (b.permanent() && b.size_refusal()) {
    SQLPOST_TRY_ASSIGN(resplit, resplit_smaller(run, partner.name, b.original));
  } else if (b.permanent()) {
    SQLPOST_TRY(hold_part(run, partner.name, seq, part));
  }
  SQLPOST_TRY(record_bounce(run, partner.name, seq, part, b, resplit));
  SQLPOST_TRY(tx.commit());
  report_bounce(run, partner, b, resplit);
  SQLPOST_TRY(run.remove_mail(ref));
  return true;
}

std::size_t max_message_bytes_for(RunContext& run, const std::string& site) {
  auto st = run.db.cached("SELECT value FROM sqlpost_meta WHERE key = ?");
  if (!st.ok()) {
    return run.options.max_message_bytes;
  }
  (*st)->bind(1, kSizeLimitKey + site);
  auto row = (*st)->step();
  const std::int64_t learned = row.ok() && row.value() ? (*st)->column_int(0) : 0;
  (*st)->reset();
  return learned > 0 ? std::min(run.options.max_message_bytes, static_cast<std::size_t>(learned))
                     : run.options.max_message_bytes;
}

}  // namespace sqlpost
