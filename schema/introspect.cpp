#include "schema/introspect.h"

#include <algorithm>
#include <cctype>

namespace sqlpost {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

Result<std::vector<ColumnInfo>> read_columns(Database& db, const std::string& table) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, "
                                "hidden FROM pragma_table_xinfo(?) ORDER BY cid"));
  st.bind(1, table);
  std::vector<ColumnInfo> columns;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    ColumnInfo c;
    c.name = st.column_text(0);
    c.declared_type = st.column_text(1);
    c.not_null = st.column_int(2) != 0;
    c.has_default = st.column_int(3) != 0;
    c.pk_position = static_cast<int>(st.column_int(4));
    const std::int64_t hidden = st.column_int(5);
    c.generated = hidden == 2 || hidden == 3;
    if (hidden == 1) {
      continue;  // hidden columns of virtual tables
    }
    columns.push_back(std::move(c));
  }
  return columns;
}

}  // namespace

bool is_sqlpost_name(std::string_view name) {
  constexpr std::string_view kPrefix = "sqlpost_";
  return name.size() >= kPrefix.size() && iequals(name.substr(0, kPrefix.size()), kPrefix);
}

std::vector<std::string> TableInfo::key_columns() const {
  std::vector<const ColumnInfo*> keys;
  for (const auto& c : columns) {
    if (c.pk_position > 0) {
      keys.push_back(&c);
    }
  }
  std::sort(keys.begin(), keys.end(), [](const ColumnInfo* a, const ColumnInfo* b) {
    return a->pk_position < b->pk_position;
  });
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (const auto* c : keys) {
    names.push_back(c->name);
  }
  return names;
}

const ColumnInfo* TableInfo::find(std::string_view column) const {
  for (const auto& c : columns) {
    if (iequals(c.name, column)) {
      return &c;
    }
  }
  return nullptr;
}

Result<TableInfo> describe_table(Database& db, std::string_view table) {
  const std::string name(table);
  if (is_sqlpost_name(name)) {
    return make_error(Errc::kInvalidArgument,
                      "table '" + name + "' belongs to sqlpost and cannot be published");
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT type, name, sql FROM main.sqlite_master "
                                              "WHERE name = ? COLLATE NOCASE AND type IN "
                                              "('table', 'view')"));
  st.bind(1, name);
  SQLPOST_TRY_ASSIGN(const bool found, st.step());
  if (!found) {
    return make_error(Errc::kNotFound, "no such table: " + name);
  }
  TableInfo info;
  const std::string type = st.column_text(0);
  info.name = st.column_text(1);
  info.create_sql = st.column_text(2);
  if (type == "view") {
    return make_error(Errc::kInvalidArgument, "'" + info.name + "' is a view, not a table");
  }
  std::string upper = info.create_sql;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper.rfind("CREATE VIRTUAL", 0) == 0) {
    return make_error(Errc::kInvalidArgument,
                      "'" + info.name + "' is a virtual table and cannot be published");
  }
  info.without_rowid = upper.find("WITHOUT ROWID") != std::string::npos;
  SQLPOST_TRY_ASSIGN(info.columns, read_columns(db, info.name));
  if (info.key_columns().empty()) {
    return make_error(Errc::kInvalidArgument,
                      "table '" + info.name + "' has no declared PRIMARY KEY; sqlpost needs one");
  }
  return info;
}

Result<std::vector<std::string>> table_schema_statements(Database& db, std::string_view table) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT sql FROM sqlite_master WHERE tbl_name = ? "
                                              "COLLATE NOCASE AND sql IS NOT NULL AND type IN "
                                              "('table', 'index') ORDER BY type = 'index', name"));
  st.bind(1, table);
  SQLPOST_TRY_ASSIGN(auto statements, st.rows([](const Statement& r) { return r.column_text(0); }));
  if (statements.empty()) {
    return make_error(Errc::kNotFound,
                      "table '" + std::string(table) + "' has no schema at this site");
  }
  return statements;
}

}  // namespace sqlpost
