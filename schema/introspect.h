// sqlpost/schema/introspect.h — what sqlpost needs to know about a user table.
//
// Contract: describe_table() reads the table's declared columns and primary
// key from SQLite's catalog (main schema only). It refuses views, virtual
// tables, sqlpost's own tables and tables without a declared PRIMARY KEY, each
// with a one-line message naming the problem. Generated columns are reported
// but flagged, since they are computed at every site and never captured.
#pragma once

#include <string>
#include <vector>

#include "schema/db.h"

namespace sqlpost {

struct ColumnInfo {
  std::string name;
  std::string declared_type;
  bool not_null = false;
  bool has_default = false;
  int pk_position = 0;  // 1-based position in the primary key, 0 when not a key column
  bool generated = false;
};

struct TableInfo {
  std::string name;  // as spelled in the catalog
  std::vector<ColumnInfo> columns;
  bool without_rowid = false;
  std::string create_sql;

  // Primary-key columns in key order.
  [[nodiscard]] std::vector<std::string> key_columns() const;
  [[nodiscard]] const ColumnInfo* find(std::string_view column) const;
};

Result<TableInfo> describe_table(Database& db, std::string_view table);

// The table's CREATE TABLE, then its CREATE INDEX statements, as this site has them
// (the table name compared case-insensitively). kNotFound when it has none.
Result<std::vector<std::string>> table_schema_statements(Database& db, std::string_view table);

// True for names reserved to sqlpost (sqlpost_*), compared case-insensitively.
bool is_sqlpost_name(std::string_view name);

}  // namespace sqlpost
