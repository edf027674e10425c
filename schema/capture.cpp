#include "schema/capture.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "schema/introspect.h"
#include "schema/metadata.h"

namespace sqlpost {
namespace {

constexpr std::string_view kTriggerPrefix = "sqlpost_capture_";

std::string trigger_name(std::string_view kind, std::string_view table) {
  return quote_identifier(std::string(kTriggerPrefix) + std::string(kind) + "_" +
                          std::string(table));
}

// Columns captured for a table: every non-generated column when some article
// publishes the whole table, else the union of the articles' column lists.
std::vector<std::string> captured_columns(const TableInfo& info,
                                          const std::vector<const Article*>& articles) {
  const bool whole = std::any_of(articles.begin(), articles.end(),
                                 [](const Article* a) { return a->columns.empty(); });
  std::set<std::string> wanted;
  for (const Article* a : articles) {
    wanted.insert(a->columns.begin(), a->columns.end());
  }
  std::vector<std::string> columns = info.key_columns();
  for (const auto& c : info.columns) {
    const bool is_key = c.pk_position > 0;
    if (!is_key && !c.generated && (whole || wanted.count(c.name) > 0)) {
      columns.push_back(c.name);
    }
  }
  return columns;
}

Result<std::int64_t> find_or_add_layout(Database& db, const CaptureLayout& layout) {
  const std::string columns = nlohmann::json(layout.columns).dump();
  SQLPOST_TRY_ASSIGN(Statement find, db.prepare("SELECT id FROM sqlpost_layouts WHERE "
                                                "table_name = ? AND columns = ?"));
  find.bind(1, layout.table).bind(2, columns);
  SQLPOST_TRY_ASSIGN(const bool found, find.step());
  if (found) {
    return find.column_int(0);
  }
  SQLPOST_TRY_ASSIGN(Statement add, db.prepare("INSERT INTO sqlpost_layouts(table_name, columns, "
                                               "pk_count) VALUES (?, ?, ?)"));
  add.bind(1, layout.table).bind(2, columns).bind(3, static_cast<std::int64_t>(layout.key_count));
  SQLPOST_TRY(add.run());
  return db.last_insert_rowid();
}

Result<std::size_t> log_width(Database& db) {
  SQLPOST_TRY_ASSIGN(const std::int64_t n,
                     db.query_int("SELECT count(*) FROM pragma_table_info('sqlpost_log') "
                                  "WHERE name GLOB 'n[0-9]*'"));
  return static_cast<std::size_t>(n);
}

// The log gains value columns when a wider table is published (cheap in SQLite).
Result<> ensure_log_width(Database& db, std::size_t width) {
  SQLPOST_TRY_ASSIGN(const std::size_t have, log_width(db));
  for (std::size_t i = have; i < width; ++i) {
    SQLPOST_TRY(db.exec("ALTER TABLE sqlpost_log ADD COLUMN n" + std::to_string(i)));
    SQLPOST_TRY(db.exec("ALTER TABLE sqlpost_log ADD COLUMN o" + std::to_string(i)));
  }
  return success();
}

Result<> drop_capture_triggers(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT name FROM sqlite_master WHERE type = "
                                              "'trigger' AND substr(name, 1, 16) = "
                                              "'sqlpost_capture_'"));
  std::vector<std::string> names;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    names.push_back(st.column_text(0));
  }
  for (const auto& name : names) {
    SQLPOST_TRY(db.exec("DROP TRIGGER " + quote_identifier(name)));
  }
  return success();
}

std::string log_insert(const CaptureLayout& layout, ChangeOp op, bool with_new, bool with_old) {
  std::string names = "epoch, layout, op, origin";
  std::string values = "epoch, " + std::to_string(layout.id) + ", " +
                       std::to_string(static_cast<int>(op)) +
                       ", (SELECT origin FROM sqlpost_context)";
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    const std::string column = quote_identifier(layout.columns[i]);
    if (with_new) {
      names += ", n" + std::to_string(i);
      values += ", NEW." + column;
    }
    if (with_old) {
      names += ", o" + std::to_string(i);
      values += ", OLD." + column;
    }
  }
  return "INSERT INTO sqlpost_log(" + names + ") SELECT " + values + " FROM sqlpost_epoch;";
}

Result<> create_triggers(Database& db, const CaptureLayout& layout) {
  const std::string table = quote_identifier(layout.table);
  std::string update_of;
  for (const auto& c : layout.columns) {
    update_of += (update_of.empty() ? "" : ", ") + quote_identifier(c);
  }
  SQLPOST_TRY(db.exec("CREATE TRIGGER " + trigger_name("ins", layout.table) + " AFTER INSERT ON " +
                      table + " BEGIN " + log_insert(layout, ChangeOp::kInsert, true, false) +
                      " END"));
  SQLPOST_TRY(db.exec("CREATE TRIGGER " + trigger_name("upd", layout.table) + " AFTER UPDATE OF " +
                      update_of + " ON " + table + " BEGIN " +
                      log_insert(layout, ChangeOp::kUpdate, true, true) + " END"));
  return db.exec("CREATE TRIGGER " + trigger_name("del", layout.table) + " AFTER DELETE ON " +
                 table + " BEGIN " + log_insert(layout, ChangeOp::kDelete, false, true) + " END");
}

}  // namespace

Result<CaptureLayout> capture_layout_for(Database& db, std::string_view table) {
  SQLPOST_TRY_ASSIGN(const TableInfo info, describe_table(db, table));
  SQLPOST_TRY_ASSIGN(const auto articles, load_articles(db));
  std::vector<const Article*> mine;
  for (const auto& a : articles) {
    if (a.table == info.name) {
      mine.push_back(&a);
    }
  }
  CaptureLayout layout;
  layout.table = info.name;
  layout.key_count = info.key_columns().size();
  layout.columns = captured_columns(info, mine);
  return layout;
}

Result<> regenerate_capture(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto articles, load_articles(db));
  std::set<std::string> tables;
  for (const auto& a : articles) {
    tables.insert(a.table);
  }
  SQLPOST_TRY(drop_capture_triggers(db));
  for (const auto& table : tables) {
    SQLPOST_TRY_ASSIGN(CaptureLayout layout, capture_layout_for(db, table));
    SQLPOST_TRY_ASSIGN(layout.id, find_or_add_layout(db, layout));
    SQLPOST_TRY(ensure_log_width(db, layout.columns.size()));
    SQLPOST_TRY(create_triggers(db, layout));
  }
  return success();
}

Result<std::vector<CaptureLayout>> load_layouts(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT id, table_name, columns, pk_count FROM "
                                              "sqlpost_layouts ORDER BY id"));
  std::vector<CaptureLayout> layouts;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    CaptureLayout l;
    l.id = st.column_int(0);
    l.table = st.column_text(1);
    SQLPOST_TRY_ASSIGN(l.columns, parse_column_list(st.column_text(2), "sqlpost_layouts row " +
                                                                           std::to_string(l.id) +
                                                                           " column 'columns'"));
    l.key_count = static_cast<std::size_t>(st.column_int(3));
    layouts.push_back(std::move(l));
  }
  return layouts;
}

Result<> log_passthrough(Database& db, std::string_view sql, const Value& target) {
  SQLPOST_TRY(ensure_log_width(db, 1));
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT INTO sqlpost_log(epoch, layout, op, origin, n0, o0) "
                                "SELECT epoch, 0, ?, (SELECT origin FROM sqlpost_context), ?, ? "
                                "FROM sqlpost_epoch"));
  st.bind(1, static_cast<std::int64_t>(ChangeOp::kPassthrough)).bind(2, sql).bind(3, target);
  return st.run();
}

Result<> log_article_record(Database& db, ChangeOp op, std::string_view publication,
                            std::string_view table, std::string_view definition,
                            const Value& target) {
  SQLPOST_TRY(ensure_log_width(db, 3));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("INSERT INTO sqlpost_log(epoch, layout, op, origin, "
                                              "n0, n1, n2, o0) SELECT epoch, 0, ?, (SELECT "
                                              "origin FROM sqlpost_context), ?, ?, ?, ? FROM "
                                              "sqlpost_epoch"));
  st.bind(1, static_cast<std::int64_t>(op)).bind(2, publication).bind(3, table);
  st.bind(4, definition).bind(5, target);
  return st.run();
}

Result<std::int64_t> log_table_rows(Database& db, std::string_view table, std::string_view origin) {
  SQLPOST_TRY_ASSIGN(CaptureLayout layout, capture_layout_for(db, table));
  SQLPOST_TRY_ASSIGN(layout.id, find_or_add_layout(db, layout));
  SQLPOST_TRY(ensure_log_width(db, layout.columns.size()));
  std::string names = "epoch, layout, op, origin";
  std::string values = "(SELECT epoch FROM sqlpost_epoch), " + std::to_string(layout.id) + ", " +
                       std::to_string(static_cast<int>(ChangeOp::kInsert)) + ", ?";
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    names += ", n" + std::to_string(i);
    values += ", " + quote_identifier(layout.columns[i]);
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("INSERT INTO sqlpost_log(" + names + ") SELECT " +
                                              values + " FROM " + quote_identifier(layout.table)));
  st.bind(1, origin);
  SQLPOST_TRY(st.run());
  return db.changes();
}

}  // namespace sqlpost
