#include "replication/bounce.h"

#include <map>
#include <utility>

#include "replication/conflicts.h"
#include "replication/subsets.h"
#include "schema/capture.h"

namespace sqlpost {
namespace {

using DecidedRows = std::map<std::pair<std::string, std::string>, Row>;  // (table, key) -> key

Result<DecidedRows> load_decided_rows(Database& db, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("SELECT table_name, row_key, value FROM sqlpost_bounce WHERE "
                               "site = ? AND sent_in IS NULL ORDER BY table_name, row_key, "
                               "position"));
  st->bind(1, site);
  DecidedRows rows;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st->step());
    if (!row) {
      break;
    }
    rows[{st->column_text(0), st->column_text(1)}].push_back(st->column(2));
  }
  return rows;
}

std::string select_row_sql(const CaptureLayout& layout) {
  std::string names;
  for (std::size_t i = layout.key_count; i < layout.columns.size(); ++i) {
    names += (names.empty() ? "" : ", ") + quote_identifier(layout.columns[i]);
  }
  std::string where;
  for (std::size_t i = 0; i < layout.key_count; ++i) {
    where += (i == 0 ? "" : " AND ") + quote_identifier(layout.columns[i]) + " IS ?" +
             std::to_string(i + 1);
  }
  return "SELECT " + (names.empty() ? std::string("1") : names) + " FROM " +
         quote_identifier(layout.table) + " WHERE " + where;
}

// The row as it is now: an insert of every captured column, or a delete.
Result<WireChange> current_row(Database& db, const CaptureLayout& layout, const Row& key) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached(select_row_sql(layout)));
  for (std::size_t i = 0; i < key.size(); ++i) {
    st->bind(static_cast<int>(i + 1), key[i]);
  }
  SQLPOST_TRY_ASSIGN(const bool found, st->step());
  WireChange change;
  change.key = key;
  change.op = found ? ChangeOp::kInsert : ChangeOp::kDelete;
  for (std::size_t i = layout.key_count; found && i < layout.columns.size(); ++i) {
    change.columns.push_back(static_cast<std::uint32_t>(i));
    change.new_values.push_back(st->column(static_cast<int>(i - layout.key_count)));
  }
  st->reset();
  return change;
}

std::uint32_t table_block(Payload& payload, const CaptureLayout& layout) {
  for (std::size_t i = 0; i < payload.tables.size(); ++i) {
    const TableBlock& t = payload.tables[i];
    if (t.table == layout.table && t.columns == layout.columns) {
      return static_cast<std::uint32_t>(i);
    }
  }
  payload.tables.push_back(TableBlock{layout.table, layout.columns, layout.key_count});
  return static_cast<std::uint32_t>(payload.tables.size() - 1);
}

}  // namespace

Result<> remember_decided_row(Database& db, const std::string& site, const std::string& table,
                              const Row& key) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("INSERT OR REPLACE INTO sqlpost_bounce(site, table_name, row_key, "
                               "position, value) VALUES (?, ?, ?, ?, ?)"));
  const std::string rendered = render_key(key);
  for (std::size_t i = 0; i < key.size(); ++i) {
    st->bind(1, site).bind(2, table).bind(3, rendered);
    st->bind(4, static_cast<std::int64_t>(i)).bind(5, key[i]);
    SQLPOST_TRY(st->run());
  }
  return success();
}

Result<> append_decided_rows(Database& db, const Partner& partner, Payload& payload,
                             std::int64_t epoch) {
  SQLPOST_TRY_ASSIGN(const DecidedRows rows, load_decided_rows(db, partner.name));
  if (rows.empty()) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const SubsetFilter subset, SubsetFilter::load(db, partner));
  EpochBlock block{epoch, {}};
  for (const auto& [where, key] : rows) {
    SQLPOST_TRY_ASSIGN(const CaptureLayout layout, capture_layout_for(db, where.first));
    if (key.size() != layout.key_count) {
      continue;  // the table's key changed since: nothing sensible to send
    }
    SQLPOST_TRY_ASSIGN(WireChange change, current_row(db, layout, key));
    if (change.op == ChangeOp::kInsert) {
      // The decided row may have left the partner's subset: then it is a delete there.
      Row image = key;
      image.insert(image.end(), change.new_values.begin(), change.new_values.end());
      SQLPOST_TRY_ASSIGN(const auto in, subset.contains(db, layout, image));
      if (in != true) {
        change.op = ChangeOp::kDelete;
        change.columns.clear();
        change.new_values.clear();
      }
    }
    change.table = table_block(payload, layout);
    block.changes.push_back(std::move(change));
  }
  if (!payload.epochs.empty() && payload.epochs.back().epoch == epoch) {
    auto& last = payload.epochs.back().changes;
    last.insert(last.end(), block.changes.begin(), block.changes.end());
  } else {
    payload.epochs.push_back(std::move(block));
  }
  return success();
}

Result<> decided_rows_sent(Database& db, const std::string& site, std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("UPDATE sqlpost_bounce SET sent_in = ? WHERE "
                                               "site = ? AND sent_in IS NULL"));
  st->bind(1, seq).bind(2, site);
  return st->run();
}

Result<> forget_acknowledged_decided_rows(Database& db, const std::string& site, std::int64_t ack) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("DELETE FROM sqlpost_bounce WHERE site = ? AND sent_in <= ?"));
  st->bind(1, site).bind(2, ack);
  return st->run();
}

Result<> requeue_decided_rows(Database& db, const std::string& site, std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("UPDATE sqlpost_bounce SET sent_in = NULL WHERE "
                                               "site = ? AND sent_in > ?"));
  st->bind(1, site).bind(2, seq);
  return st->run();
}

}  // namespace sqlpost
