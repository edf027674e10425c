#include "replication/preparer.h"

#include "replication/bounce.h"
#include "replication/mail_bounces.h"
#include "replication/message_control.h"
#include "replication/rekey.h"
#include "replication/restore.h"
#include "transport/codec.h"

namespace sqlpost {
namespace {

// A partner's messages are committed together with the other partners' (a commit
// per partner made an idle 1,000-site pass cost 1,000 disk flushes), each in its own
// savepoint: a partner whose message cannot be prepared is reported and left out,
// the others go on. The batch is committed once it holds kOutboxBatchBytes, so the
// write lock is held for short steps. A partner with nothing new writes nothing.
constexpr std::int64_t kOutboxBatchBytes = 4 << 20;

}  // namespace

Result<> Preparer::prepare_for(const Partner& partner, Payload payload, std::int64_t closed) {
  SQLPOST_TRY_ASSIGN(const bool rekey_due, add_rekey_record(run_, partner, payload));
  if (payload.change_count() == 0 && partner.sent_epoch >= closed && !rekey_due) {
    SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
    if (s.restore_request == 0) {
      return success();  // nothing new, no restore request: nothing to write
    }
  }
  if (!batch_) {
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
    batch_.emplace(std::move(tx));
  }
  SQLPOST_TRY_ASSIGN(Savepoint step, Savepoint::begin(run_.db));
  auto stored = store_outgoing(partner, std::move(payload), closed);
  if (!stored.ok()) {
    if (is_database_failure(stored.error().code)) {
      return stored;
    }
    note(run_.report, stored.error(),
         "preparing a message for " + partner.name +
             " (nothing of it was written; the other partners go on)");
    return success();  // `step` rolls back what this partner wrote
  }
  SQLPOST_TRY(step.release());
  return batch_bytes_ >= kOutboxBatchBytes ? commit_outbox_batch() : success();
}

Result<> Preparer::commit_outbox_batch() {
  if (!batch_) {
    return success();
  }
  Transaction tx = std::move(*batch_);
  batch_.reset();
  batch_bytes_ = 0;
  SQLPOST_TRY(run_.crash_point("before-outbox-commit"));
  SQLPOST_TRY(tx.commit());
  return run_.crash_point("after-outbox-commit");
}

// One transaction is one message: a message over this site's own limits.max_changes
// will be set aside by a partner that uses the same limit (docs/security.md).
void Preparer::warn_if_over_limits(const Partner& partner, std::int64_t seq, std::size_t changes) {
  if (changes > run_.options.decode_limits.max_changes) {
    run_.report.notes.push_back(
        "message " + std::to_string(seq) + " to " + partner.name + " carries " +
        std::to_string(changes) + " changes, more than limits.max_changes (" +
        std::to_string(run_.options.decode_limits.max_changes) + "); unless " + partner.name +
        " allows that many, it will set the message aside: raise "
        "limits.max_changes there");
  }
}

// One partner's message (when it has changes) and its sent epoch, in the batch.
Result<> Preparer::store_outgoing(const Partner& partner, Payload payload, std::int64_t closed) {
  SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
  // A restore request goes in a message of its own if there are no changes to carry.
  if (payload.change_count() > 0 || s.restore_request > 0 || payload.rekey) {
    payload.ack = static_cast<std::uint64_t>(s.applied_seq);
    payload.resend_from = static_cast<std::uint64_t>(s.resend_from);
    SQLPOST_TRY(add_health_for(run_, partner, payload));
    SQLPOST_TRY(add_restore_fields(run_, partner, s, payload));
    SQLPOST_TRY_ASSIGN(const std::vector<std::uint8_t> previous,
                       chain_identity(run_.db, partner.name, s.next_seq));
    payload.prev_digest = previous;
    payload.restored_from = static_cast<std::uint64_t>(s.restore_request);
    SQLPOST_TRY_ASSIGN(const PairKeys keys, opening_keys(run_.db, partner.name));
    const transport::Key& key = keys.keys.front();  // the sealing key (replication/rekey.h)
    const auto bytes = encode_payload(payload);
    SQLPOST_TRY_ASSIGN(const auto mails,
                       transport::encode_message(
                           {run_.local.name, partner.name, static_cast<std::uint64_t>(s.next_seq)},
                           run_.local.address, partner.address, bytes, key,
                           max_message_bytes_for(run_, partner.name)));
    SQLPOST_TRY(insert_outbox(partner.name, s.next_seq, mails));
    SQLPOST_TRY(note_rekey_prepared(run_, partner, s.next_seq, payload));
    warn_if_over_limits(partner, s.next_seq, payload.change_count());
    std::int64_t bytes_written = 0;
    for (const auto& m : mails) {
      bytes_written += static_cast<std::int64_t>(m.size());
    }
    batch_bytes_ += bytes_written;
    run_.event({.partner = partner.name,
                .event = "prepared",
                .seq = s.next_seq,
                .parts = static_cast<std::int64_t>(mails.size()),
                .bytes = bytes_written,
                .changes = static_cast<std::int64_t>(payload.change_count()),
                .detail = {}});
    SQLPOST_TRY(decided_rows_sent(run_.db, partner.name, s.next_seq));
    SQLPOST_TRY_ASSIGN(Statement * sent,
                       run_.db.cached("INSERT OR REPLACE INTO sqlpost_sent(site, seq, from_epoch, "
                                      "to_epoch, digest) VALUES (?, ?, ?, ?, ?)"));
    sent->bind(1, partner.name).bind(2, s.next_seq).bind(3, partner.sent_epoch).bind(4, closed);
    sent->bind(5, Value(Blob{message_identity(bytes)}));
    SQLPOST_TRY(sent->run());
    SQLPOST_TRY(run_.streams.record_prepared(partner.name, s.resend_from > 0, run_.now()));
    ++run_.report.messages_prepared;
  }
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("UPDATE sqlpost_sites SET sent_epoch = ? WHERE name = ?"));
  st->bind(1, closed).bind(2, partner.name);
  SQLPOST_TRY(st->run());
  // An echo window (replication/restore.h) ends once a message covered it.
  return run_.streams.end_echo_window(partner.name, closed);
}

Result<> Preparer::insert_outbox(const std::string& site, std::int64_t seq,
                                 const std::vector<std::string>& mails) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("INSERT INTO sqlpost_outbox(site, seq, part, parts, mail, "
                                    "created_at) VALUES (?, ?, ?, ?, ?, ?)"));
  for (std::size_t i = 0; i < mails.size(); ++i) {
    st->bind(1, site).bind(2, seq).bind(3, static_cast<std::int64_t>(i + 1));
    st->bind(4, static_cast<std::int64_t>(mails.size()));
    st->bind(5, Value(as_blob(mails[i]))).bind(6, run_.now());
    SQLPOST_TRY(st->run());
  }
  return success();
}

}  // namespace sqlpost
