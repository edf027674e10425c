#include "replication/changelog.h"

#include <limits>

#include <map>

namespace sqlpost {
namespace {

using LayoutMap = std::map<std::int64_t, std::shared_ptr<const CaptureLayout>>;

Result<LayoutMap> layouts_by_id(Database& db) {
  SQLPOST_TRY_ASSIGN(auto layouts, load_layouts(db));
  LayoutMap map;
  for (auto& l : layouts) {
    const std::int64_t id = l.id;
    map.emplace(id, std::make_shared<const CaptureLayout>(std::move(l)));
  }
  return map;
}

Result<std::size_t> log_width(Database& db) {
  SQLPOST_TRY_ASSIGN(const std::int64_t n,
                     db.query_int("SELECT count(*) FROM pragma_table_info('sqlpost_log') "
                                  "WHERE name GLOB 'n[0-9]*'"));
  return static_cast<std::size_t>(n);
}

std::string select_log_sql(std::size_t width) {
  std::string sql = "SELECT seq, epoch, layout, op, origin";
  for (std::size_t i = 0; i < width; ++i) {
    sql += ", n" + std::to_string(i) + ", o" + std::to_string(i);
  }
  return sql + " FROM sqlpost_log WHERE seq > ? AND seq <= ? ORDER BY seq";
}

constexpr int kFirstValueColumn = 5;

Change change_from_row(const Statement& st, const std::shared_ptr<const CaptureLayout>& layout) {
  Change c;
  c.seq = st.column_int(0);
  c.epoch = st.column_int(1);
  c.op = static_cast<ChangeOp>(st.column_int(3));
  c.origin = st.column_text(4);
  c.layout = layout;
  const std::size_t n = layout->columns.size();
  if (c.op != ChangeOp::kDelete) {
    c.new_values.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      c.new_values.push_back(st.column(kFirstValueColumn + static_cast<int>(2 * i)));
    }
  }
  if (c.op != ChangeOp::kInsert) {
    c.old_values.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      c.old_values.push_back(st.column(kFirstValueColumn + static_cast<int>(2 * i + 1)));
    }
  }
  return c;
}

// A passthrough row: n0 holds the SQL, o0 the target site (NULL: every child).
Change passthrough_from_row(const Statement& st) {
  static const auto kNoTable = std::make_shared<const CaptureLayout>();
  Change c;
  c.seq = st.column_int(0);
  c.epoch = st.column_int(1);
  c.op = ChangeOp::kPassthrough;
  c.origin = st.column_text(4);
  c.layout = kNoTable;
  c.new_values = {st.column(kFirstValueColumn)};
  c.old_values = {st.column(kFirstValueColumn + 1)};
  return c;
}

// An article record: n0 publication, n1 table, n2 definition; o0 the target site.
Change article_record_from_row(const Statement& st) {
  static const auto kNoTable = std::make_shared<const CaptureLayout>();
  Change c;
  c.seq = st.column_int(0);
  c.epoch = st.column_int(1);
  c.op = static_cast<ChangeOp>(st.column_int(3));
  c.origin = st.column_text(4);
  c.layout = kNoTable;
  c.new_values = {st.column(kFirstValueColumn), st.column(kFirstValueColumn + 2),
                  st.column(kFirstValueColumn + 4)};
  c.old_values = {st.column(kFirstValueColumn + 1)};
  return c;
}

bool key_changed(const Change& c) {
  for (std::size_t i = 0; i < c.layout->key_count; ++i) {
    if (!(c.new_values[i] == c.old_values[i])) {
      return true;
    }
  }
  return false;
}

// A key update travels as delete of the old key + insert of the new row.
Result<> visit_change(Change change, const ChangeVisitor& visit) {
  if (change.op != ChangeOp::kUpdate || !key_changed(change)) {
    return visit(change);
  }
  Change removal = change;
  removal.op = ChangeOp::kDelete;
  removal.new_values.clear();
  SQLPOST_TRY(visit(removal));
  change.op = ChangeOp::kInsert;
  change.old_values.clear();
  return visit(change);
}

}  // namespace

Row Change::key() const {
  const Row& image = op == ChangeOp::kDelete ? old_values : new_values;
  return {image.begin(), image.begin() + static_cast<std::ptrdiff_t>(layout->key_count)};
}

std::vector<std::size_t> Change::changed_columns() const {
  std::vector<std::size_t> changed;
  if (op != ChangeOp::kUpdate) {
    return changed;
  }
  for (std::size_t i = 0; i < new_values.size(); ++i) {
    if (!(new_values[i] == old_values[i])) {
      changed.push_back(i);
    }
  }
  return changed;
}

Result<std::int64_t> close_epoch_in_transaction(Database& db, std::int64_t now) {
  if (!db.in_transaction()) {
    return make_error(Errc::kInternal, "closing an epoch needs the caller's write transaction");
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t closing, db.query_int("SELECT epoch FROM sqlpost_epoch"));
  // All rows of epochs <= closing are committed: we hold the write lock.
  SQLPOST_TRY_ASSIGN(const std::int64_t last_seq,
                     db.query_int("SELECT max(seq) FROM sqlpost_log", 0));
  SQLPOST_TRY_ASSIGN(const std::int64_t previous_mark,
                     db.query_int("SELECT max(last_seq) FROM sqlpost_epoch_marks", 0));
  SQLPOST_TRY_ASSIGN(Statement mark,
                     db.prepare("INSERT INTO sqlpost_epoch_marks(epoch, last_seq, closed_at) "
                                "VALUES (?1, ?2, iif(?3 < 0, unixepoch(), ?3))"));
  mark.bind(1, closing).bind(2, std::max(last_seq, previous_mark)).bind(3, now);
  SQLPOST_TRY(mark.run());
  SQLPOST_TRY(db.exec("UPDATE sqlpost_epoch SET epoch = epoch + 1"));
  return closing;
}

Result<std::int64_t> cut_epoch(Database& db, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db, Transaction::Kind::kImmediate));
  SQLPOST_TRY_ASSIGN(const std::int64_t closing, close_epoch_in_transaction(db, now));
  SQLPOST_TRY(tx.commit());
  return closing;
}

Result<std::int64_t> cut_epoch_if_logged(Database& db, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(const std::int64_t unmarked,
                     db.query_int("SELECT (SELECT ifnull(max(seq), 0) FROM sqlpost_log) > "
                                  "(SELECT ifnull(max(last_seq), 0) FROM sqlpost_epoch_marks)",
                                  0));
  if (unmarked == 0) {
    return last_closed_epoch(db);
  }
  return cut_epoch(db, now);
}

Result<std::int64_t> last_closed_epoch(Database& db) {
  return db.query_int("SELECT max(epoch) FROM sqlpost_epoch_marks", 0);
}

Result<std::int64_t> first_closed_at_after(Database& db, std::int64_t epoch) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("SELECT closed_at FROM sqlpost_epoch_marks WHERE epoch > ? "
                               "ORDER BY epoch LIMIT 1"));
  st->bind(1, epoch);
  SQLPOST_TRY_ASSIGN(const bool row, st->step());
  const std::int64_t at = row ? st->column_int(0) : 0;
  st->reset();
  return at;
}

Result<std::int64_t> epoch_end_seq(Database& db, std::int64_t epoch) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT last_seq FROM sqlpost_epoch_marks WHERE "
                                              "epoch <= ? ORDER BY epoch DESC LIMIT 1"));
  st.bind(1, epoch);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  return row ? st.column_int(0) : 0;
}

namespace {

Result<> read_log_range(Database& db, std::int64_t from_seq, std::int64_t to_seq,
                        const std::set<std::string>& tables, const ChangeVisitor& visit);

}  // namespace

Result<std::set<std::string>> origins_between(Database& db, std::int64_t after_epoch,
                                              std::int64_t upto_epoch) {
  SQLPOST_TRY_ASSIGN(const std::int64_t from_seq, epoch_end_seq(db, after_epoch));
  SQLPOST_TRY_ASSIGN(const std::int64_t to_seq, epoch_end_seq(db, upto_epoch));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT DISTINCT ifnull(origin, '') FROM "
                                              "sqlpost_log WHERE seq > ? AND seq <= ?"));
  st.bind(1, from_seq).bind(2, to_seq);
  std::set<std::string> origins;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return origins;
    }
    origins.insert(st.column_text(0));
  }
}

Result<> read_changes(Database& db, std::int64_t after_epoch, std::int64_t upto_epoch,
                      const std::set<std::string>& tables, const ChangeVisitor& visit) {
  SQLPOST_TRY_ASSIGN(const std::int64_t closed, last_closed_epoch(db));
  if (upto_epoch > closed) {
    return make_error(Errc::kInvalidArgument,
                      "epoch " + std::to_string(upto_epoch) +
                          " is not closed yet (last closed: " + std::to_string(closed) + ")");
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t from_seq, epoch_end_seq(db, after_epoch));
  SQLPOST_TRY_ASSIGN(const std::int64_t to_seq, epoch_end_seq(db, upto_epoch));
  return read_log_range(db, from_seq, to_seq, tables, visit);
}

Result<> read_changes_since(Database& db, std::int64_t after_epoch,
                            const std::set<std::string>& tables, const ChangeVisitor& visit) {
  SQLPOST_TRY_ASSIGN(const std::int64_t from_seq, epoch_end_seq(db, after_epoch));
  return read_log_range(db, from_seq, std::numeric_limits<std::int64_t>::max(), tables, visit);
}

namespace {

Result<> read_log_range(Database& db, std::int64_t from_seq, std::int64_t to_seq,
                        const std::set<std::string>& tables, const ChangeVisitor& visit) {
  SQLPOST_TRY_ASSIGN(const LayoutMap layouts, layouts_by_id(db));
  SQLPOST_TRY_ASSIGN(const std::size_t width, log_width(db));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare(select_log_sql(width)));
  st.bind(1, from_seq).bind(2, to_seq);
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    if (st.column_int(3) == static_cast<int>(ChangeOp::kPassthrough)) {
      SQLPOST_TRY(visit(passthrough_from_row(st)));
      continue;
    }
    if (is_control_op(static_cast<ChangeOp>(st.column_int(3)))) {
      SQLPOST_TRY(visit(article_record_from_row(st)));
      continue;
    }
    const auto layout = layouts.find(st.column_int(2));
    if (layout == layouts.end()) {
      return make_error(Errc::kInternal, "change log row " + std::to_string(st.column_int(0)) +
                                             " names unknown capture layout " +
                                             std::to_string(st.column_int(2)));
    }
    if (!tables.empty() && tables.count(layout->second->table) == 0) {
      continue;
    }
    SQLPOST_TRY(visit_change(change_from_row(st, layout->second), visit));
  }
  return success();
}

}  // namespace

}  // namespace sqlpost

#include "schema/metadata.h"

namespace sqlpost {

Result<std::set<std::string>> tables_routed_to(Database& db, const Partner& partner) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT DISTINCT a.table_name FROM sqlpost_articles a WHERE ?1 = "
                                "'parent' OR a.publication IN (SELECT publication FROM "
                                "sqlpost_subscriptions WHERE site = ?2)"));
  st.bind(1, std::string_view(partner.relation == Relation::kParent ? "parent" : "child"));
  st.bind(2, partner.name);
  std::set<std::string> tables;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    tables.insert(st.column_text(0));
  }
  return tables;
}

namespace {

// Article records (live publication changes) waiting for a child.
Result<std::int64_t> count_unsent_article_records(Database& db, const Partner& partner,
                                                  std::int64_t from_seq) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT count(*) FROM sqlpost_log WHERE seq > ?1 AND op IN (?3, "
                                "?4) AND (origin IS NULL OR origin <> ?2) AND (o0 = ?2 OR (o0 IS "
                                "NULL AND n0 IN (SELECT publication FROM sqlpost_subscriptions "
                                "WHERE site = ?2)))"));
  st.bind(1, from_seq).bind(2, partner.name);
  st.bind(3, static_cast<std::int64_t>(ChangeOp::kArticleAdded));
  st.bind(4, static_cast<std::int64_t>(ChangeOp::kArticleRemoved));
  SQLPOST_TRY(st.step());
  return st.column_int(0);
}

}  // namespace

Result<std::int64_t> count_unsent_changes(Database& db, const Partner& partner) {
  SQLPOST_TRY_ASSIGN(const std::set<std::string> tables, tables_routed_to(db, partner));
  SQLPOST_TRY_ASSIGN(const std::int64_t from_seq, epoch_end_seq(db, partner.sent_epoch));
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT l.table_name, count(*) FROM sqlpost_log g JOIN "
                                "sqlpost_layouts l ON l.id = g.layout WHERE g.seq > ? AND "
                                "(g.origin IS NULL OR (g.origin <> ? AND g.origin <> ?)) GROUP BY "
                                "l.table_name"));
  st.bind(1, from_seq).bind(2, partner.name).bind(3, kPassthroughOrigin);
  std::int64_t total = 0;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    if (tables.count(st.column_text(0)) > 0) {
      total += st.column_int(1);
    }
  }
  if (partner.relation == Relation::kChild) {
    SQLPOST_TRY_ASSIGN(Statement sql,
                       db.prepare("SELECT count(*) FROM sqlpost_log WHERE seq > ? AND op = ? AND "
                                  "(origin IS NULL OR origin <> ?) AND (o0 IS NULL OR o0 = ?)"));
    sql.bind(1, from_seq).bind(2, static_cast<std::int64_t>(ChangeOp::kPassthrough));
    sql.bind(3, partner.name).bind(4, partner.name);
    SQLPOST_TRY(sql.step());
    total += sql.column_int(0);
    SQLPOST_TRY_ASSIGN(const std::int64_t records,
                       count_unsent_article_records(db, partner, from_seq));
    total += records;
  }
  return total;
}

}  // namespace sqlpost
