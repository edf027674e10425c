#include "replication/bookkeeping.h"

#include <string>

namespace sqlpost {
namespace {

Result<> count_dropped(Database& db, const char* key, std::int64_t dropped) {
  if (dropped == 0) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("INSERT INTO sqlpost_meta(key, value) VALUES (?1, ?2) ON "
                               "CONFLICT(key) DO UPDATE SET value = ifnull(value, 0) + ?2"));
  st->bind(1, std::string_view(key)).bind(2, dropped);
  return st->run();
}

// Runs a DELETE and returns how many rows it removed.
Result<std::int64_t> delete_rows(Database& db, const std::string& sql, std::int64_t parameter) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached(sql));
  st->bind(1, parameter);
  SQLPOST_TRY(st->run());
  return db.changes();
}

}  // namespace

Result<> cap_rejected(Database& db, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(const std::int64_t old,
                     delete_rows(db, "DELETE FROM sqlpost_rejected WHERE received_at < ?1",
                                 now - kRecordRetentionSeconds));
  SQLPOST_TRY_ASSIGN(const std::int64_t many,
                     delete_rows(db,
                                 "DELETE FROM sqlpost_rejected WHERE id NOT IN (SELECT id FROM "
                                 "sqlpost_rejected ORDER BY id DESC LIMIT ?1)",
                                 kMaxRejectedRows));
  SQLPOST_TRY_ASSIGN(
      const std::int64_t big,
      delete_rows(db,
                  "DELETE FROM sqlpost_rejected WHERE id IN (SELECT id FROM (SELECT id, "
                  "sum(ifnull(length(mail), 0) + length(reason)) OVER (ORDER BY id DESC) AS "
                  "total FROM sqlpost_rejected) WHERE total > ?1)",
                  kMaxRejectedBytes));
  return count_dropped(db, "rejected_dropped", old + many + big);
}

Result<> cap_foreign(Database& db, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(const std::int64_t old,
                     delete_rows(db, "DELETE FROM sqlpost_foreign_mail WHERE seen_at < ?1",
                                 now - kRecordRetentionSeconds));
  SQLPOST_TRY_ASSIGN(const std::int64_t many,
                     delete_rows(db,
                                 "DELETE FROM sqlpost_foreign_mail WHERE mail_id NOT IN (SELECT "
                                 "mail_id FROM sqlpost_foreign_mail ORDER BY seen_at DESC, "
                                 "mail_id LIMIT ?1)",
                                 kMaxForeignRows));
  return count_dropped(db, "foreign_dropped", old + many);
}

Result<DroppedRecords> load_dropped_records(Database& db) {
  DroppedRecords d;
  SQLPOST_TRY_ASSIGN(d.rejected, db.query_int("SELECT value FROM sqlpost_meta WHERE key = "
                                              "'rejected_dropped'"));
  SQLPOST_TRY_ASSIGN(d.foreign, db.query_int("SELECT value FROM sqlpost_meta WHERE key = "
                                             "'foreign_dropped'"));
  return d;
}

}  // namespace sqlpost
