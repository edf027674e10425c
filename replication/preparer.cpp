#include "replication/preparer.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "replication/bounce.h"
#include "replication/mail_bounces.h"
#include "replication/message_control.h"
#include "replication/rekey.h"
#include "replication/restore.h"
#include "transport/codec.h"
#include "transport/message_stream.h"

namespace sqlpost {
namespace {

// A partner's messages are committed together with the other partners' (a commit
// per partner made an idle 1,000-site pass cost 1,000 disk flushes), each in its own
// savepoint: a partner whose message cannot be prepared is reported and left out,
// the others go on. The batch is committed once it holds kOutboxBatchBytes, so the
// write lock is held for short steps. A partner with nothing new writes nothing.
constexpr std::int64_t kOutboxBatchBytes = 4 << 20;

}  // namespace

Result<> Preparer::prepare_for(const Partner& partner, SpooledBody& body, std::int64_t closed) {
  Payload head;
  SQLPOST_TRY_ASSIGN(const bool rekey_due, add_rekey_record(run_, partner, head));
  if (body.changes() == 0 && partner.sent_epoch >= closed && !rekey_due) {
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
  auto stored = store_outgoing(partner, body, std::move(head), closed);
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

// The message's e-mails into the outbox, straight from the spool: the payload is
// compressed once to learn |C| and its digest (every envelope names them). A C of
// at most kKeepCompressed bytes (most messages of a busy hub: a few changes each)
// is kept and sealed from memory. A bigger one is compressed again as the parts
// are sealed, one part in memory at a time: zstd gives the same bytes for the same
// input, and the second digest is checked all the same.
Result<Preparer::Stored> Preparer::store_parts(const Partner& partner, std::int64_t seq,
                                               SpooledBody& body, const Payload& head) {
  constexpr std::size_t kKeepCompressed = std::size_t{1} << 20;
  SQLPOST_TRY_ASSIGN(const PairKeys keys, opening_keys(run_.db, partner.name));
  const transport::Key& key = keys.keys.front();  // the sealing key (replication/rekey.h)
  const std::size_t max_bytes = max_message_bytes_for(run_, partner.name);
  transport::MeasuredMessage measured;
  {
    SQLPOST_TRY_ASSIGN(auto measured_payload, body.payload(head));
    SQLPOST_TRY_ASSIGN(measured, transport::measure_compressed(
                                     *measured_payload, std::min(max_bytes, kKeepCompressed)));
  }
  std::unique_ptr<ByteSource> payload;
  std::optional<transport::CompressingSource> again;
  std::optional<SpanSource> kept;
  ByteSource* compressed = nullptr;
  if (measured.kept) {
    compressed = &kept.emplace(*measured.kept);
  } else {
    SQLPOST_TRY_ASSIGN(payload, body.payload(head));
    compressed = &again.emplace(*payload);
  }
  Stored stored;
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("INSERT INTO sqlpost_outbox(site, seq, part, parts, mail, "
                                    "created_at) VALUES (?, ?, ?, ?, ?, ?)"));
  SQLPOST_TRY(transport::encode_parts(
      {run_.local.name, partner.name, static_cast<std::uint64_t>(seq)}, run_.local.address,
      partner.address, measured.message, *compressed, key, max_bytes,
      [&](std::uint32_t part, std::uint32_t parts, const std::string& mail) -> Result<> {
        st->bind(1, partner.name).bind(2, seq).bind(3, static_cast<std::int64_t>(part));
        st->bind(4, static_cast<std::int64_t>(parts));
        stored.bytes += static_cast<std::int64_t>(mail.size());
        stored.parts = parts;
        st->bind(5, Value(as_blob(mail))).bind(6, run_.now());
        return st->run();
      }));
  if (again && again->read_so_far().digest != measured.message.digest) {
    return make_error(Errc::kInternal, "compressing message " + std::to_string(seq) + " to " +
                                           partner.name + " twice gave different bytes");
  }
  const auto& digest = measured.message.digest;
  stored.identity.assign(digest.begin(),
                         digest.begin() + static_cast<std::ptrdiff_t>(kMessageDigestBytes));
  return stored;
}

// One partner's message (when it has changes) and its sent epoch, in the batch.
Result<> Preparer::store_outgoing(const Partner& partner, SpooledBody& body, Payload head,
                                  std::int64_t closed) {
  SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
  // A restore request goes in a message of its own if there are no changes to carry.
  if (body.changes() > 0 || s.restore_request > 0 || head.rekey) {
    head.ack = static_cast<std::uint64_t>(s.applied_seq);
    head.resend_from = static_cast<std::uint64_t>(s.resend_from);
    SQLPOST_TRY(add_health_for(run_, partner, head));
    SQLPOST_TRY(add_restore_fields(run_, partner, s, head));
    SQLPOST_TRY_ASSIGN(const std::vector<std::uint8_t> previous,
                       chain_identity(run_.db, partner.name, s.next_seq));
    head.prev_digest = previous;
    head.restored_from = static_cast<std::uint64_t>(s.restore_request);
    SQLPOST_TRY(body.finish());
    SQLPOST_TRY_ASSIGN(const Stored stored, store_parts(partner, s.next_seq, body, head));
    SQLPOST_TRY(note_rekey_prepared(run_, partner, s.next_seq, head));
    warn_if_over_limits(partner, s.next_seq, body.changes());
    batch_bytes_ += stored.bytes;
    run_.event({.partner = partner.name,
                .event = "prepared",
                .seq = s.next_seq,
                .parts = static_cast<std::int64_t>(stored.parts),
                .bytes = stored.bytes,
                .changes = static_cast<std::int64_t>(body.changes()),
                .detail = {}});
    SQLPOST_TRY(decided_rows_sent(run_.db, partner.name, s.next_seq));
    SQLPOST_TRY_ASSIGN(Statement * sent,
                       run_.db.cached("INSERT OR REPLACE INTO sqlpost_sent(site, seq, from_epoch, "
                                      "to_epoch, digest) VALUES (?, ?, ?, ?, ?)"));
    sent->bind(1, partner.name).bind(2, s.next_seq).bind(3, partner.sent_epoch).bind(4, closed);
    sent->bind(5, Value(Blob{stored.identity}));
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

}  // namespace sqlpost
