#include "replication/apply.h"

#include <algorithm>

#include "schema/introspect.h"

namespace sqlpost {
namespace {

// The local table a TableBlock names, checked against this site's schema.
Result<> check_table(Database& db, const TableBlock& block) {
  auto info = describe_table(db, block.table);
  if (!info.ok()) {
    return make_error(Errc::kUnsupported,
                      "schema mismatch: the message changes table '" + block.table +
                          "', which this site cannot apply: " + info.error().message);
  }
  for (std::size_t i = 0; i < block.columns.size(); ++i) {
    const ColumnInfo* column = info->find(block.columns[i]);
    if (column == nullptr) {
      return make_error(Errc::kUnsupported, "schema mismatch: table '" + block.table +
                                                "' has no column '" + block.columns[i] +
                                                "' at this site");
    }
  }
  const auto keys = info->key_columns();
  const std::vector<std::string> sent(
      block.columns.begin(), block.columns.begin() + static_cast<std::ptrdiff_t>(block.key_count));
  if (keys != sent) {
    return make_error(Errc::kUnsupported,
                      "schema mismatch: the primary key of '" + block.table + "' differs");
  }
  return success();
}

std::string key_condition(const TableBlock& t, int first_parameter) {
  std::string sql;
  for (std::size_t i = 0; i < t.key_count; ++i) {
    sql += (i == 0 ? "" : " AND ") + quote_identifier(t.columns[i]) + " IS ?" +
           std::to_string(first_parameter + static_cast<int>(i));
  }
  return sql;
}

std::string insert_sql(const TableBlock& t, const std::vector<std::uint32_t>& columns) {
  std::string names;
  std::string params;
  std::string updates;
  int n = 0;
  auto add = [&](const std::string& column) {
    names += (n == 0 ? "" : ", ") + quote_identifier(column);
    params += (n == 0 ? "?" : ", ?") + std::to_string(n + 1);
    ++n;
  };
  for (std::size_t i = 0; i < t.key_count; ++i) {
    add(t.columns[i]);
  }
  for (const auto c : columns) {
    add(t.columns[c]);
    updates += (updates.empty() ? "" : ", ") + quote_identifier(t.columns[c]) + " = excluded." +
               quote_identifier(t.columns[c]);
  }
  return "INSERT INTO " + quote_identifier(t.table) + " (" + names + ") VALUES (" + params +
         ") ON CONFLICT DO " + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates);
}

std::string update_sql(const TableBlock& t, const std::vector<std::uint32_t>& columns) {
  std::string sets;
  int n = 0;
  for (const auto c : columns) {
    sets += (n == 0 ? "" : ", ") + quote_identifier(t.columns[c]) + " = ?" + std::to_string(n + 1);
    ++n;
  }
  return "UPDATE " + quote_identifier(t.table) + " SET " + sets + " WHERE " +
         key_condition(t, n + 1);
}

std::string delete_sql(const TableBlock& t) {
  return "DELETE FROM " + quote_identifier(t.table) + " WHERE " + key_condition(t, 1);
}

Result<> run_insert(Database& db, const TableBlock& t, const WireChange& c) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached(insert_sql(t, c.columns)));
  int i = 1;
  for (const auto& v : c.key) {
    st->bind_static(i++, v);
  }
  for (const auto& v : c.new_values) {
    st->bind_static(i++, v);
  }
  return st->run();
}

Result<bool> run_update(Database& db, const TableBlock& t, const WireChange& c) {
  if (c.columns.empty()) {
    return true;
  }
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached(update_sql(t, c.columns)));
  int i = 1;
  for (const auto& v : c.new_values) {
    st->bind_static(i++, v);
  }
  for (const auto& v : c.key) {
    st->bind_static(i++, v);
  }
  SQLPOST_TRY(st->run());
  return db.changes() > 0;
}

Result<bool> run_delete(Database& db, const TableBlock& t, const WireChange& c) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached(delete_sql(t)));
  int i = 1;
  for (const auto& v : c.key) {
    st->bind_static(i++, v);
  }
  SQLPOST_TRY(st->run());
  return db.changes() > 0;
}

Result<> apply_change(Database& db, const TableBlock& t, const WireChange& c, ApplyStats& stats) {
  switch (c.op) {
    case ChangeOp::kInsert:
      SQLPOST_TRY(run_insert(db, t, c));
      ++stats.inserted;
      return success();
    case ChangeOp::kUpdate: {
      SQLPOST_TRY_ASSIGN(const bool found, run_update(db, t, c));
      found ? ++stats.updated : ++stats.missing;
      return success();
    }
    case ChangeOp::kDelete: {
      SQLPOST_TRY_ASSIGN(const bool found, run_delete(db, t, c));
      found ? ++stats.deleted : ++stats.missing;
      return success();
    }
  }
  return make_error(Errc::kCorruption, "unknown change operation");
}

}  // namespace

Result<ApplyStats> apply_payload(Database& db, const Payload& payload) {
  if (!db.in_transaction()) {
    return make_error(Errc::kInternal, "apply needs the caller's write transaction");
  }
  for (const auto& t : payload.tables) {
    SQLPOST_TRY(check_table(db, t));
  }
  SQLPOST_TRY(db.exec("PRAGMA defer_foreign_keys = ON"));
  ApplyStats stats;
  for (const auto& epoch : payload.epochs) {
    for (const auto& change : epoch.changes) {
      auto applied = apply_change(db, payload.tables[change.table], change, stats);
      if (!applied.ok()) {
        Error e = applied.take_error();
        e.message = "applying a change to '" + payload.tables[change.table].table + "' (epoch " +
                    std::to_string(epoch.epoch) + "): " + e.message;
        return e;
      }
    }
  }
  return stats;
}

}  // namespace sqlpost
