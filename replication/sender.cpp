#include "replication/sender.h"

#include <algorithm>

#include "replication/message_control.h"
#include "transport/codec.h"

namespace sqlpost {
namespace {

// What a send pass learns (parts sent, acknowledgements sent) is written in
// batches of kSendBatch steps: a transaction per sent part made a 1,000-site pass
// cost thousands of disk flushes, and a send must not hold the write lock while it
// talks to a server. Each batch is written after Link::flush() made its mails
// durable at the link (the file link's one flush for many mails), never before: a
// part recorded as sent is never lost. A crash before a batch is written only means
// its parts or acknowledgements are sent again, and receivers drop duplicates.
constexpr std::size_t kSendBatch = 256;

}  // namespace

Result<std::vector<OutboxPart>> Sender::due_parts(const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("SELECT seq, part, length(mail), parts, sent_count FROM "
                                    "sqlpost_outbox "
                                    "WHERE site = ? AND "
                                    "(last_sent_at IS NULL OR last_sent_at <= ?) ORDER BY seq, "
                                    "part"));
  st->bind(1, site).bind(2, run_.now() - run_.options.resend_timeout);
  return st->rows([](const Statement& row) {
    return OutboxPart{row.column_int(0), row.column_int(1), row.column_int(2), row.column_int(3),
                      row.column_int(4)};
  });
}

Result<std::string> Sender::stored_mail(const std::string& site, const OutboxPart& p) {
  SQLPOST_TRY_ASSIGN(Statement * st, run_.db.cached("SELECT mail FROM sqlpost_outbox WHERE site = "
                                                    "? AND seq = ? AND part = ?"));
  st->bind(1, site).bind(2, p.seq).bind(3, p.part);
  SQLPOST_TRY_ASSIGN(const bool row, st->step());
  std::string mail = row ? blob_text(st->column(0)) : std::string();
  st->reset();
  if (!row) {
    return make_error(Errc::kInternal, "outbox part " + std::to_string(p.part) + " of message " +
                                           std::to_string(p.seq) + " vanished while sending");
  }
  return mail;
}

// A permanent refusal (5xx: unknown recipient, message too big) is not retried
// every run: the part waits resend_timeout, and the report says what to fix.
// A write of the part's outbox row for after the flush: `sql` binds the time now,
// then the site, sequence number and part.
std::function<Result<>()> Sender::outbox_update(const char* sql, const std::string& site,
                                                const OutboxPart& p) {
  return [this, sql, site, seq = p.seq, part = p.part, at = run_.now()]() -> Result<> {
    SQLPOST_TRY_ASSIGN(Statement * st, run_.db.cached(sql));
    st->bind(1, at).bind(2, site).bind(3, seq).bind(4, part);
    return st->run();
  };
}

Result<> Sender::hold_refused_part(const Partner& partner, const OutboxPart& p,
                                   const Error& refusal) {
  run_.report.problems.push_back(
      "the mail server refused message " + std::to_string(p.seq) + " part " +
      std::to_string(p.part) + " to " + partner.name + " <" + partner.address + "> permanently (" +
      refusal.message + "); it stays in the outbox and is tried again after resend_timeout (" +
      std::to_string(run_.options.resend_timeout) +
      " s); check the partner's address and the server's size limit (max_message_bytes), "
      "then run sqlpost resend to try at once");
  run_.report.worst = refusal.code;
  run_.event({.partner = partner.name,
              .event = "refused",
              .seq = p.seq,
              .part = p.part,
              .parts = p.parts,
              .bytes = p.mail_bytes,
              .detail = refusal.message});
  return record_after_send(
      outbox_update("UPDATE sqlpost_outbox SET last_sent_at = ? WHERE site = ? AND seq = ? AND "
                    "part = ?",
                    partner.name, p),
      false);
}

Result<> Sender::record_after_send(std::function<Result<>()> step, bool sent) {
  after_send_.push_back(AfterSend{std::move(step), sent});
  return after_send_.size() >= kSendBatch ? write_after_send() : success();
}

// The mails handed to the link since the last flush are not durable: nothing of
// them is recorded, and the report takes back what it counted as sent.
void Sender::unrecord_unflushed(const Error& failure) {
  std::erase_if(after_send_, [](const AfterSend& step) { return step.sent; });
  RunReport& report = run_.report;
  note(report, failure,
       "making " + std::to_string(unflushed_parts_) + " part(s) and " +
           std::to_string(unflushed_acks_) +
           " acknowledgement(s) durable at the link (not recorded as sent; they go again "
           "next run)");
  ++report.send_failures;
  report.parts_sent -= unflushed_parts_;
  report.acks_sent -= unflushed_acks_;
  for (std::size_t i = flushed_events_; i < report.events.size(); ++i) {
    MessageEvent& e = report.events[i];
    if (e.event == "sent" || e.event == "resent") {
      e.event = "failed";
      e.detail = failure.message;
    }
  }
  const auto first = report.details.begin() + static_cast<std::ptrdiff_t>(flushed_details_);
  report.details.erase(std::remove_if(first, report.details.end(),
                                      [](const std::string& d) { return d.starts_with("sent "); }),
                       report.details.end());
  flush_failed_ = true;
}

Result<> Sender::write_after_send() {
  if (auto flushed = run_.link.flush(); flushed.ok()) {
    if (!after_send_.empty()) {
      SQLPOST_TRY(run_.crash_point("after-flush"));  // durable at the link, not recorded
    }
  } else {
    unrecord_unflushed(flushed.error());
  }
  unflushed_parts_ = 0;
  unflushed_acks_ = 0;
  flushed_events_ = run_.report.events.size();
  flushed_details_ = run_.report.details.size();
  if (after_send_.empty()) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  for (const auto& step : after_send_) {
    SQLPOST_TRY(step.write());
  }
  after_send_.clear();
  return tx.commit();
}

Result<bool> Sender::send_outbox(const Partner& partner) {
  if (flush_failed_) {
    return false;
  }
  SQLPOST_TRY_ASSIGN(const auto parts, due_parts(partner.name));
  if (parts.empty()) {
    return true;
  }
  auto pair_key = key_of(partner);
  if (!pair_key.ok()) {
    note(run_.report, pair_key.error(), "sending to " + partner.name + " (the outbox waits)");
    return false;
  }
  const transport::Key& key = pair_key.value();
  for (const auto& p : parts) {
    SQLPOST_TRY_ASSIGN(const std::string stored, stored_mail(partner.name, p));
    SQLPOST_TRY_ASSIGN(const std::string mail, transport::with_fresh_message_id(stored, key));
    auto sent = run_.link.send(partner.address, mail);
    if (!sent.ok()) {
      ++run_.report.send_failures;
      if (sent.error().code == Errc::kPermanent) {
        SQLPOST_TRY(hold_refused_part(partner, p, sent.error()));
        return false;
      }
      note(run_.report, sent.error(),
           "sending message " + std::to_string(p.seq) + " part " + std::to_string(p.part) + " to " +
               partner.name + " (kept in the outbox, retried next run)");
      run_.event({.partner = partner.name,
                  .event = "failed",
                  .seq = p.seq,
                  .part = p.part,
                  .parts = p.parts,
                  .bytes = p.mail_bytes,
                  .detail = sent.error().message});
      return false;
    }
    SQLPOST_TRY(run_.crash_point("after-send"));
    ++run_.report.parts_sent;
    run_.event({.partner = partner.name,
                .event = p.sent_count > 0 ? "resent" : "sent",
                .seq = p.seq,
                .part = p.part,
                .parts = p.parts,
                .bytes = static_cast<std::int64_t>(mail.size()),  // as sent: its own Message-ID
                .detail = {}});
    run_.report.details.push_back("sent message " + std::to_string(p.seq) + " part " +
                                  std::to_string(p.part) + " to " + partner.name + " <" +
                                  partner.address + ">");
    ++unflushed_parts_;  // counted and reported above, taken back if the flush fails
    SQLPOST_TRY(record_after_send(
        outbox_update("UPDATE sqlpost_outbox SET sent_count = sent_count + 1, last_sent_at = ? "
                      "WHERE site = ? AND seq = ? AND part = ?",
                      partner.name, p)));
    if (flush_failed_) {
      return false;
    }
  }
  if (!parts.empty()) {
    SQLPOST_TRY(record_after_send([this, site = partner.name, at = run_.now()] {
      return run_.streams.set_last_sent(site, at);
    }));
  }
  return true;
}

Result<> Sender::send_ack_only(const Partner& partner) {
  SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
  if (!s.ack_owed && s.resend_from == 0) {
    return success();
  }
  Payload payload;
  payload.kind = PayloadKind::kAckOnly;
  payload.ack = static_cast<std::uint64_t>(s.applied_seq);
  payload.resend_from = static_cast<std::uint64_t>(s.resend_from);
  SQLPOST_TRY(add_health_for(run_, partner, payload));
  SQLPOST_TRY(add_restore_fields(run_, partner, s, payload));
  SQLPOST_TRY_ASSIGN(const transport::Key key, key_of(partner));
  SQLPOST_TRY_ASSIGN(const auto mails,
                     transport::encode_message(
                         {run_.local.name, partner.name, 0}, run_.local.address, partner.address,
                         encode_payload(payload), key, run_.options.max_message_bytes));
  std::int64_t ack_bytes = 0;
  for (const auto& encoded : mails) {
    SQLPOST_TRY_ASSIGN(const std::string mail, transport::with_fresh_message_id(encoded, key));
    auto sent = run_.link.send(partner.address, mail);
    if (!sent.ok()) {
      ++run_.report.send_failures;
      note(run_.report, sent.error(), "sending an acknowledgement to " + partner.name);
      return success();
    }
    ack_bytes += static_cast<std::int64_t>(mail.size());
  }
  ++run_.report.acks_sent;
  ++unflushed_acks_;
  run_.event(
      {.partner = partner.name,
       .event = "sent",
       .part = 1,
       .parts = static_cast<std::int64_t>(mails.size()),
       .bytes = ack_bytes,
       .detail = "acknowledgement of #" + std::to_string(s.applied_seq) +
                 (s.resend_from > 0 ? ", resend from #" + std::to_string(s.resend_from) : "")});
  return record_after_send(
      [this, site = partner.name, resend = s.resend_from > 0, at = run_.now()] {
        return run_.streams.record_ack_sent(site, resend, at);
      });
}

}  // namespace sqlpost
