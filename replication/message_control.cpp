#include "replication/message_control.h"

#include <algorithm>

#include "replication/bounce.h"
#include "replication/health.h"
#include "replication/rekey.h"
#include "replication/restore.h"

namespace sqlpost {
namespace {

// The message log's "acknowledged": how many messages, and the seconds from
// writing the newest of them to its acknowledgement (the partner's lag).
Result<> note_acknowledged(RunContext& run, const Partner& partner, std::int64_t before,
                           std::int64_t ack) {
  SQLPOST_TRY_ASSIGN(Statement * st, run.db.cached("SELECT min(created_at) FROM sqlpost_outbox "
                                                   "WHERE site = ? AND seq = ?"));
  st->bind(1, partner.name).bind(2, ack);
  SQLPOST_TRY(st->step());
  const std::int64_t written = st->column_is_null(0) ? 0 : st->column_int(0);
  st->reset();
  run.event({.partner = partner.name,
             .event = "acknowledged",
             .seq = ack,
             .changes = ack - before,
             .lag = written > 0 ? std::max<std::int64_t>(0, run.now() - written) : 0,
             .detail = {}});
  return success();
}

Result<> schedule_resend(RunContext& run, const Partner& partner, std::int64_t from) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run.db.cached("UPDATE sqlpost_outbox SET last_sent_at = NULL WHERE site = ? "
                                   "AND seq >= ? AND last_sent_at <= ?"));
  st->bind(1, partner.name).bind(2, from).bind(3, run.now() - run.options.resend_interval);
  SQLPOST_TRY(st->run());
  // Sent within resend_interval: queued, due when the interval is over.
  SQLPOST_TRY_ASSIGN(Statement * queue,
                     run.db.cached("UPDATE sqlpost_outbox SET last_sent_at = min(last_sent_at, "
                                   "last_sent_at + ?4 - ?5) WHERE site = ?1 AND seq >= ?2 AND "
                                   "last_sent_at > ?3"));
  queue->bind(1, partner.name).bind(2, from).bind(3, run.now() - run.options.resend_interval);
  queue->bind(4, run.options.resend_interval).bind(5, run.options.resend_timeout);
  SQLPOST_TRY(queue->run());
  if (run.db.changes() > 0) {
    run.report.notes.push_back("site " + partner.name + " asks for message " +
                               std::to_string(from) + " again within resend_interval (" +
                               std::to_string(run.options.resend_interval) +
                               " s) of the last send; " + std::to_string(run.db.changes()) +
                               " part(s) queued, sent again when the interval is over");
  }
  SQLPOST_TRY_ASSIGN(Statement * oldest,
                     run.db.cached("SELECT min(seq) FROM sqlpost_outbox WHERE site = ?"));
  oldest->bind(1, partner.name);
  SQLPOST_TRY_ASSIGN(const bool row, oldest->step());
  const std::int64_t first = row && !oldest->column_is_null(0) ? oldest->column_int(0) : 0;
  oldest->reset();
  if (first == 0 || first > from) {
    // Usually a late, stale request (an ack-only message overtaken by a newer
    // acknowledgement). If the partner was restored from a backup, our answer
    // (which says what it acknowledged) lets it find out and recover.
    run.report.notes.push_back("site " + partner.name + " asks for message " +
                               std::to_string(from) +
                               ", which it has acknowledged since; answering with what it "
                               "acknowledged (if it was restored from a backup, it recovers)");
    SQLPOST_TRY(run.streams.mark_ack_owed(partner.name));
  }
  return success();
}

}  // namespace

Result<> add_health_for(RunContext& run, const Partner& partner, Payload& payload) {
  if (partner.relation != Relation::kParent) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(payload.health,
                     local_health(run.db, run.local.name, run.options.version, run.now()));
  return success();
}

Result<> keep_health_from(RunContext& run, const Partner& partner, const Payload& payload) {
  if (partner.relation != Relation::kChild) {
    return success();
  }
  return store_health(run.db, partner.name, payload.health, run.now());
}

Result<> process_ack(RunContext& run, const Partner& partner, const Payload& payload) {
  SQLPOST_TRY_ASSIGN(const std::string hopeless,
                     note_partner_cannot_recover(run.db, partner, payload));
  if (!hopeless.empty()) {
    run.report.problems.push_back(hopeless);
    run.report.worst = Errc::kNotFound;
    run.event({.partner = partner.name, .event = "restored", .detail = hopeless});
  }
  SQLPOST_TRY_ASSIGN(const bool stuck, recovery_needs_extract(run.db, partner.name));
  // Once only re-extraction helps, the same evidence must not start recovery again.
  SQLPOST_TRY_ASSIGN(
      const std::string evidence,
      stuck ? Result<std::string>(std::string()) : own_restore_evidence(run.db, partner, payload));
  if (!evidence.empty()) {
    SQLPOST_TRY_ASSIGN(const std::string summary,
                       begin_own_recovery(run.db, partner, payload, evidence));
    run.report.notes.push_back(summary);
    run.event({.partner = partner.name, .event = "restored", .detail = summary});
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::string relinked, relink_regenerated(run.db, partner, payload));
  if (!relinked.empty()) {
    run.report.notes.push_back(relinked);
    run.event({.partner = partner.name, .event = "restored", .detail = relinked});
  }
  SQLPOST_TRY_ASSIGN(const Stream s, run.streams.load(partner.name));
  const auto ack = static_cast<std::int64_t>(payload.ack);
  if (ack >= s.next_seq) {
    run.report.notes.push_back("site " + partner.name + " acknowledges message " +
                               std::to_string(ack) + " but only " + std::to_string(s.next_seq - 1) +
                               " were sent; ignoring (was this site restored from a backup?)");
  } else if (ack > s.acked_seq) {
    SQLPOST_TRY(note_acknowledged(run, partner, s.acked_seq, ack));
    SQLPOST_TRY(run.streams.set_acked(partner.name, ack));
    SQLPOST_TRY_ASSIGN(Statement * del,
                       run.db.cached("DELETE FROM sqlpost_outbox WHERE site = ? AND seq <= ?"));
    SQLPOST_TRY(forget_acknowledged_decided_rows(run.db, partner.name, ack));
    del->bind(1, partner.name).bind(2, ack);
    SQLPOST_TRY(del->run());
  }
  SQLPOST_TRY(rekey_after_ack(run, partner));
  if (payload.resend_from > 0) {
    SQLPOST_TRY(schedule_resend(run, partner, static_cast<std::int64_t>(payload.resend_from)));
  }
  return success();
}

Result<> add_restore_fields(RunContext& run, const Partner& partner, const Stream& s,
                            Payload& payload) {
  SQLPOST_TRY_ASSIGN(payload.ack_digest, applied_identity(run.db, partner.name));
  payload.confirmed = static_cast<std::uint64_t>(s.acked_seq);
  SQLPOST_TRY_ASSIGN(payload.reextract, partner_needs_extract(run.db, partner.name));
  return success();
}

}  // namespace sqlpost
