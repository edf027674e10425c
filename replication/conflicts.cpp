#include "replication/conflicts.h"

#include <array>
#include <cstdio>

#include "common/hex.h"

namespace sqlpost {

Result<ConflictPolicy> parse_conflict_policy(std::string_view text) {
  ConflictPolicy policy;
  policy.text = std::string(text);
  if (text.empty() || text == "incoming") {
    policy.text = "incoming";
    return policy;
  }
  if (text == "consolidated") {
    policy.kind = PolicyKind::kConsolidated;
    return policy;
  }
  constexpr std::string_view kNewest = "newest:";
  if (text.starts_with(kNewest) && text.size() > kNewest.size()) {
    policy.kind = PolicyKind::kNewest;
    policy.column = std::string(text.substr(kNewest.size()));
    return policy;
  }
  return make_error(Errc::kInvalidArgument, "unknown conflict policy '" + std::string(text) +
                                                "' (use incoming, consolidated or newest:COLUMN)");
}

namespace {

std::string exact_text(const Value& v) {
  const auto& s = v.storage();
  if (const auto* d = std::get_if<double>(&s)) {
    std::array<char, 40> buf{};
    (void)std::snprintf(buf.data(), buf.size(), "%.17g", *d);
    std::string text = buf.data();
    // Keep REAL apart from INTEGER: 1.0 renders as "1.0", not "1".
    return text.find_first_of(".eni") == std::string::npos ? text + ".0" : text;
  }
  if (const auto* b = std::get_if<Blob>(&s)) {
    return "x'" + hex_encode(b->bytes) + "'";
  }
  return v.debug_string();  // NULL, INTEGER and TEXT are rendered in full there
}

}  // namespace

std::string render_key(const Row& key) {
  std::string text = "(";
  for (std::size_t i = 0; i < key.size(); ++i) {
    text += (i == 0 ? "" : ", ") + exact_text(key[i]);
  }
  return text + ")";
}

std::string render_row(const std::vector<std::string>& columns, const Row& values) {
  std::string names;
  for (const auto& c : columns) {
    names += (names.empty() ? "" : ", ") + quote_identifier(c);
  }
  return "(" + names + ") VALUES " + render_key(values);
}

std::string row_column_key(std::string_view table, const Row& key, std::string_view column) {
  std::string text(table);
  text += '\x1f';
  text += render_key(key);
  text += '\x1f';
  text += column;
  return text;
}

Result<Value> record_conflict(Database& db, const ConflictRecord& r) {
  SQLPOST_TRY_ASSIGN(
      Statement * st,
      db.cached("INSERT INTO sqlpost_conflicts(at, table_name, row_key, kind, column_name, "
                "local_value, old_value, incoming_value, resolved_value, from_site, local_site, "
                "policy, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st->bind(1, r.at).bind(2, r.table).bind(3, r.row_key).bind(4, r.kind);
  st->bind(5, r.column ? Value::text(*r.column) : Value());
  st->bind(6, r.local).bind(7, r.old).bind(8, r.incoming).bind(9, r.resolved);
  st->bind(10, r.from_site).bind(11, r.local_site).bind(12, r.policy).bind(13, r.outcome);
  st->bind(14, r.detail);
  SQLPOST_TRY(st->run());
  const std::int64_t id = db.last_insert_rowid();
  SQLPOST_TRY_ASSIGN(Statement * read,
                     db.cached("SELECT resolved_value FROM sqlpost_conflicts WHERE id = ?"));
  read->bind(1, id);
  SQLPOST_TRY_ASSIGN(const bool row, read->step());
  Value resolved = row ? read->column(0) : r.resolved;
  read->reset();
  if (!(resolved == r.resolved)) {
    SQLPOST_TRY_ASSIGN(Statement * mark,
                       db.cached("UPDATE sqlpost_conflicts SET outcome = 'trigger' WHERE id = ?"));
    mark->bind(1, id);
    SQLPOST_TRY(mark->run());
  }
  return resolved;
}

Result<std::vector<ConflictRecord>> load_conflicts(Database& db, std::int64_t limit) {
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("SELECT id, at, table_name, row_key, kind, column_name, local_value, old_value, "
                 "incoming_value, resolved_value, from_site, local_site, policy, outcome, "
                 "ifnull(detail, '') FROM sqlpost_conflicts ORDER BY id DESC LIMIT ?"));
  st.bind(1, limit);
  std::vector<ConflictRecord> records;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    ConflictRecord r;
    r.id = st.column_int(0);
    r.at = st.column_int(1);
    r.table = st.column_text(2);
    r.row_key = st.column_text(3);
    r.kind = st.column_text(4);
    if (!st.column(5).is_null()) {
      r.column = st.column_text(5);
    }
    r.local = st.column(6);
    r.old = st.column(7);
    r.incoming = st.column(8);
    r.resolved = st.column(9);
    r.from_site = st.column_text(10);
    r.local_site = st.column_text(11);
    r.policy = st.column_text(12);
    r.outcome = st.column_text(13);
    r.detail = st.column_text(14);
    records.push_back(std::move(r));
  }
  return records;
}

Result<std::int64_t> count_conflicts(Database& db) {
  return db.query_int("SELECT count(*) FROM sqlpost_conflicts");
}

}  // namespace sqlpost
