#include "replication/retention.h"

#include <algorithm>

#include "replication/bounce.h"
#include "replication/changelog.h"
#include "schema/metadata.h"

namespace sqlpost {
namespace {

// The oldest epoch a partner may still need: the start of its first
// unacknowledged message, or its send position when all are acknowledged. For the
// parent, also what it had not seen when it built the last message applied here
// (apply compares the parent's changes with ours from there on).
Result<std::int64_t> still_needed_from(Database& db, const Partner& p) {
  const std::string acked =
      p.relation == Relation::kParent ? "min(t.acked_seq, t.seen_ack)" : "t.acked_seq";
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("SELECT min(s.from_epoch) FROM sqlpost_sent s JOIN "
                               "sqlpost_streams t ON t.site = s.site WHERE s.site = ? AND s.seq "
                               "> " +
                               acked));
  st->bind(1, p.name);
  SQLPOST_TRY(st->step());
  const std::int64_t needed =
      st->column_is_null(0) ? p.sent_epoch : std::min(p.sent_epoch, st->column_int(0));
  st->reset();
  return needed;
}

Result<std::int64_t> pruned_epoch(Database& db) {
  return db.query_int("SELECT value FROM sqlpost_meta WHERE key = 'pruned_epoch'", 0);
}

}  // namespace

Result<PruneSummary> prune_change_log(Database& db, std::int64_t now,
                                      std::int64_t retention_seconds) {
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  SQLPOST_TRY_ASSIGN(std::int64_t limit, last_closed_epoch(db));
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  for (const auto& p : partners) {
    SQLPOST_TRY_ASSIGN(const std::int64_t needed, still_needed_from(db, p));
    limit = std::min(limit, needed);
  }
  SQLPOST_TRY_ASSIGN(Statement old, db.prepare("SELECT max(epoch) FROM sqlpost_epoch_marks WHERE "
                                               "closed_at <= ?"));
  old.bind(1, now - retention_seconds);
  SQLPOST_TRY(old.step());
  limit = std::min(limit, old.column_is_null(0) ? 0 : old.column_int(0));
  SQLPOST_TRY_ASSIGN(const std::int64_t already, pruned_epoch(db));
  PruneSummary summary{already, 0};
  if (limit <= already) {
    return summary;
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t last_seq, epoch_end_seq(db, limit));
  SQLPOST_TRY_ASSIGN(Statement del, db.prepare("DELETE FROM sqlpost_log WHERE seq <= ? AND seq < "
                                               "(SELECT max(seq) FROM sqlpost_log)"));
  del.bind(1, last_seq);
  SQLPOST_TRY(del.run());
  summary.rows = db.changes();
  // The newest record per partner stays: the next message names it as predecessor.
  SQLPOST_TRY_ASSIGN(Statement sent,
                     db.prepare("DELETE FROM sqlpost_sent WHERE from_epoch < ? AND seq < (SELECT "
                                "max(seq) FROM sqlpost_sent n WHERE n.site = sqlpost_sent.site)"));
  sent.bind(1, limit);
  SQLPOST_TRY(sent.run());
  // What a partner's messages brought in those epochs can no longer be sent back to it.
  SQLPOST_TRY_ASSIGN(Statement applied, db.prepare("DELETE FROM sqlpost_applied WHERE epoch <= ?"));
  applied.bind(1, limit);
  SQLPOST_TRY(applied.run());
  SQLPOST_TRY_ASSIGN(Statement mark, db.prepare("INSERT OR REPLACE INTO sqlpost_meta VALUES "
                                                "('pruned_epoch', ?)"));
  mark.bind(1, limit);
  SQLPOST_TRY(mark.run());
  SQLPOST_TRY(tx.commit());
  summary.epoch = limit;
  return summary;
}

Result<std::int64_t> rescan_partner(Database& db, const std::string& site, std::int64_t from_seq) {
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  SQLPOST_TRY_ASSIGN(const std::int64_t from_epoch, rescan_in_transaction(db, site, from_seq));
  SQLPOST_TRY(tx.commit());
  return from_epoch;
}

Result<std::int64_t> rescan_in_transaction(Database& db, const std::string& site,
                                           std::int64_t from_seq) {
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, site));
  SQLPOST_TRY_ASSIGN(Statement stream, db.prepare("SELECT next_seq, acked_seq FROM "
                                                  "sqlpost_streams WHERE site = ?"));
  stream.bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool known, stream.step());
  const std::int64_t next_seq = known ? stream.column_int(0) : 1;
  const std::int64_t acked = known ? stream.column_int(1) : 0;
  if (from_seq == 0) {
    from_seq = acked + 1;
  }
  if (from_seq < 1) {
    return make_error(Errc::kInvalidArgument, "message numbers start at 1");
  }
  // from_seq > next_seq: this site was restored from a backup and the partner
  // already applied higher numbers; continue from there (what was sent after
  // the backup is lost with the backup's later changes).
  std::int64_t from_epoch = partner.sent_epoch;
  if (from_seq < next_seq && from_seq > 0) {
    SQLPOST_TRY_ASSIGN(Statement pos, db.prepare("SELECT from_epoch FROM sqlpost_sent WHERE site "
                                                 "= ? AND seq = ?"));
    pos.bind(1, site).bind(2, from_seq);
    SQLPOST_TRY_ASSIGN(const bool found, pos.step());
    SQLPOST_TRY_ASSIGN(const std::int64_t pruned, pruned_epoch(db));
    if (!found || pos.column_int(0) < pruned) {
      return make_error(Errc::kNotFound,
                        "cannot rescan " + site + " from message " + std::to_string(from_seq) +
                            ": the change log no longer reaches back that far; re-extract the "
                            "site with 'sqlpost extract'");
    }
    from_epoch = pos.column_int(0);
  }
  SQLPOST_TRY(requeue_decided_rows(db, site, from_seq - 1));
  for (const char* sql : {"DELETE FROM sqlpost_outbox WHERE site = ?1 AND seq >= ?2",
                          "DELETE FROM sqlpost_sent WHERE site = ?1 AND seq >= ?2",
                          "INSERT OR IGNORE INTO sqlpost_streams(site) SELECT ?1 WHERE ?2",
                          "UPDATE sqlpost_streams SET next_seq = ?2, acked_seq = min(acked_seq, "
                          "?2 - 1) WHERE site = ?1"}) {
    SQLPOST_TRY_ASSIGN(Statement st, db.prepare(sql));
    st.bind(1, site).bind(2, from_seq);
    SQLPOST_TRY(st.run());
  }
  SQLPOST_TRY_ASSIGN(Statement pos, db.prepare("UPDATE sqlpost_sites SET sent_epoch = ? WHERE "
                                               "name = ?"));
  pos.bind(1, from_epoch).bind(2, site);
  SQLPOST_TRY(pos.run());
  return from_epoch;
}

Result<std::int64_t> pruned_log_epoch(Database& db) { return pruned_epoch(db); }

Result<LogHolder> oldest_log_holder(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  LogHolder holder;
  for (const auto& p : partners) {
    SQLPOST_TRY_ASSIGN(const std::int64_t needed, still_needed_from(db, p));
    if (holder.site.empty() || needed < holder.needed_from) {
      holder = {p.name, needed};
    }
  }
  return holder;
}

}  // namespace sqlpost
