#include "replication/apply.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "replication/bounce.h"
#include "replication/keys.h"
#include "replication/publication_change.h"
#include "schema/capture.h"
#include "schema/introspect.h"
#include "schema/sandbox.h"

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
  // The conflict target is the primary key: a clash on another UNIQUE index is a
  // constraint failure, never an update of some other row.
  std::string key;
  for (std::size_t i = 0; i < t.key_count; ++i) {
    key += (i == 0 ? "" : ", ") + quote_identifier(t.columns[i]);
  }
  return "INSERT INTO " + quote_identifier(t.table) + " (" + names + ") VALUES (" + params +
         ") ON CONFLICT(" + key + ") DO " + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates);
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

std::string select_sql(const TableBlock& t, const std::vector<std::string>& columns) {
  std::string names;
  for (const auto& c : columns) {
    names += (names.empty() ? "" : ", ") + quote_identifier(c);
  }
  return "SELECT " + (names.empty() ? std::string("1") : names) + " FROM " +
         quote_identifier(t.table) + " WHERE " + key_condition(t, 1);
}

class Applier {
 public:
  Applier(Database& db, const ApplyContext& ctx, ApplyStats& stats)
      : db_(db), ctx_(ctx), stats_(stats) {}

  // Schema changes (passthrough SQL, article records) drop the statements below.
  void forget_statements() { statements_.clear(); }

  Result<> apply(const TableBlock& t, const WireChange& c) {
    switch (c.op) {
      case ChangeOp::kInsert: return apply_insert(t, c);
      case ChangeOp::kUpdate: return apply_update(t, c);
      case ChangeOp::kDelete: return apply_delete(t, c);
      case ChangeOp::kPassthrough:
      case ChangeOp::kArticleAdded:
      case ChangeOp::kArticleRemoved: break;
    }
    return make_error(Errc::kCorruption, "unknown change operation");
  }

  // Runs the statements (what they change is not replicated as data), regenerates
  // the capture triggers, and logs the passthrough again for this site's children.
  Result<> apply_passthrough(const WireChange& c) {
    const std::string& sql = std::get<Text>(c.key.front().storage()).bytes;
    SQLPOST_TRY(set_origin(std::string(kPassthroughOrigin)));
    std::string refusal;
    auto ran = [&]() -> Result<> {
      SQLPOST_TRY_ASSIGN(const SqlSandbox sandbox, SqlSandbox::enter(db_));
      auto result = db_.exec(sql);
      refusal = sandbox.refusal();
      return result;
    }();
    if (!refusal.empty()) {
      return make_error(Errc::kAuthentication, "passthrough SQL from " + ctx_.from_site +
                                                   " refused: " + refusal +
                                                   " (docs/security.md); nothing of the "
                                                   "message was applied");
    }
    if (!ran.ok()) {
      return make_error(Errc::kUnsupported, "passthrough SQL from " + ctx_.from_site +
                                                " failed here (" + ran.error().message +
                                                "); fix the database by hand, then sqlpost "
                                                "resend on the sender, or re-extract this site");
    }
    SQLPOST_TRY(set_origin(ctx_.from_site));
    SQLPOST_TRY(regenerate_capture(db_));
    return log_passthrough(db_, sql, c.new_values.front());
  }

  Result<> set_origin(const std::string& origin) {
    SQLPOST_TRY_ASSIGN(Statement * st, db_.cached("UPDATE sqlpost_context SET origin = ?"));
    st->bind(1, origin);
    return st->run();
  }

  // Rows left violating a foreign key: recorded once per row, kept.
  Result<> check_foreign_keys(const std::deque<TableBlock>& blocks) {
    SQLPOST_TRY_ASSIGN(const auto tables, tables_to_check(blocks));
    for (const auto& table : tables) {
      SQLPOST_TRY_ASSIGN(Statement st, db_.prepare("SELECT \"table\", rowid, parent FROM "
                                                   "pragma_foreign_key_check(?)"));
      st.bind(1, table);
      for (;;) {
        SQLPOST_TRY_ASSIGN(const bool row, st.step());
        if (!row) {
          break;
        }
        SQLPOST_TRY(record_foreign_key(st.column_text(0), st.column(1), st.column_text(2)));
      }
    }
    return success();
  }

 private:
  // ---- reading the local row

  std::vector<std::string> names_of(const TableBlock& t, const std::vector<std::uint32_t>& cols) {
    std::vector<std::string> names;
    names.reserve(cols.size());
    for (const auto c : cols) {
      names.push_back(t.columns[c]);
    }
    return names;
  }

  Result<std::optional<Row>> read_row(const TableBlock& t, const Row& key,
                                      const std::vector<std::string>& columns) {
    SQLPOST_TRY_ASSIGN(Statement * st, db_.cached(select_sql(t, columns)));
    for (std::size_t i = 0; i < key.size(); ++i) {
      st->bind(static_cast<int>(i + 1), key[i]);
    }
    SQLPOST_TRY_ASSIGN(const bool found, st->step());
    std::optional<Row> row;
    if (found) {
      row.emplace();
      for (std::size_t i = 0; i < columns.size(); ++i) {
        row->push_back(st->column(static_cast<int>(i)));
      }
    }
    st->reset();
    return row;
  }

  // ---- statements; a constraint failure skips the change instead of failing the message

  // The statement of one kind for a table block (at a stable address for the whole
  // message, ApplySession::State) and column set, prepared once per message: the
  // lookup key is built in a reused buffer, so a change costs no SQL text.
  template <typename MakeSql>
  Result<Statement*> statement_for(char kind, const TableBlock& t,
                                   const std::vector<std::uint32_t>& columns, MakeSql make_sql) {
    statement_key_.assign(1, kind);
    const auto table = reinterpret_cast<std::uintptr_t>(&t);
    statement_key_.append(reinterpret_cast<const char*>(&table), sizeof table);
    statement_key_.append(reinterpret_cast<const char*>(columns.data()),
                          columns.size() * sizeof(std::uint32_t));
    auto it = statements_.find(statement_key_);
    if (it == statements_.end()) {
      SQLPOST_TRY_ASSIGN(Statement st, db_.prepare(make_sql()));
      it = statements_.emplace(statement_key_, std::move(st)).first;
    }
    it->second.reset();
    return &it->second;
  }

  static bool is_constraint_failure(const Error& e) {
    return e.code == Errc::kDatabase && e.message.find("constraint failed") != std::string::npos;
  }

  Result<bool> guarded(const TableBlock& t, const WireChange& c, const Result<>& ran) {
    if (ran.ok()) {
      return true;
    }
    if (!is_constraint_failure(ran.error())) {
      return ran.error();
    }
    if (!ctx_.decides && mode_ != Mode::kRecord) {
      // From the parent: its row wins. Tried again after the rest of the message,
      // which may remove the clashing row (retry_failed_changes).
      failed_ = true;
      if (mode_ == Mode::kDefer) {
        deferred_.emplace_back(&t, c);
      }
      return false;
    }
    ConflictRecord r = base_record(t, c.key, kConflictConstraint);
    r.outcome = "skipped";
    r.detail = ran.error().message;
    SQLPOST_TRY(record_only(r));
    if (ctx_.decides) {
      decide_row(t, c.key);  // the origin gets this site's row (or its absence)
    }
    return false;
  }

  Result<> run_upsert(const TableBlock& t, const WireChange& c) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       statement_for('i', t, c.columns, [&] { return insert_sql(t, c.columns); }));
    int i = 1;
    for (const auto& v : c.key) {
      st->bind_static(i++, v);
    }
    for (const auto& v : c.new_values) {
      st->bind_static(i++, v);
    }
    return st->run();
  }

  Result<> run_update(const TableBlock& t, const std::vector<std::uint32_t>& columns,
                      const Row& values, const Row& key) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       statement_for('u', t, columns, [&] { return update_sql(t, columns); }));
    int i = 1;
    for (const auto& v : values) {
      st->bind_static(i++, v);
    }
    for (const auto& v : key) {
      st->bind_static(i++, v);
    }
    return st->run();
  }

  Result<> run_delete(const TableBlock& t, const Row& key) {
    SQLPOST_TRY_ASSIGN(Statement * st, statement_for('d', t, {}, [&] { return delete_sql(t); }));
    int i = 1;
    for (const auto& v : key) {
      st->bind_static(i++, v);
    }
    return st->run();
  }

  // ---- a child changes only rows it holds (docs/security.md)

  // False when this site's current row is outside the sending child's subset (the
  // change is then recorded and not applied); true when there is no such row.
  Result<bool> child_holds_row(const TableBlock& t, const WireChange& c) {
    if (!ctx_.decides || !ctx_.subset || ctx_.subset->whole(t.table)) {
      return true;
    }
    auto layout = layouts_.find(t.table);
    if (layout == layouts_.end()) {
      SQLPOST_TRY_ASSIGN(CaptureLayout loaded, capture_layout_for(db_, t.table));
      layout = layouts_.emplace(t.table, std::move(loaded)).first;
    }
    SQLPOST_TRY_ASSIGN(const auto local, read_row(t, c.key, layout->second.columns));
    if (!local) {
      return true;
    }
    SQLPOST_TRY_ASSIGN(const std::optional<bool> in,
                       ctx_.subset->contains(db_, layout->second, *local));
    if (!in.has_value() || *in) {
      return true;  // in its subset, or its SUBSCRIBE BY value is NULL (unplaced)
    }
    ++stats_.refused;
    ConflictRecord r = base_record(t, c.key, kConflictOutsideSubset);
    r.outcome = "refused";
    r.detail = "site " + ctx_.from_site + " changed a row outside its subset here; not applied";
    SQLPOST_TRY(record_only(r));
    return false;
  }

  // ---- the three operations

  // ---- a follower keeps its own changes the parent has not seen yet

  [[nodiscard]] bool pending(const TableBlock& t, const Row& key, std::string_view column) const {
    return !ctx_.pending.empty() && ctx_.pending.count(row_column_key(t.table, key, column)) > 0;
  }

  // This site's last values of the pending columns of a row the parent's change just
  // wrote, written again with this site as their origin.
  Result<> write_pending_again(const TableBlock& t, const WireChange& c) {
    std::vector<std::uint32_t> columns;
    Row values;
    for (const auto index : c.columns) {
      const auto it = ctx_.pending.find(row_column_key(t.table, c.key, t.columns[index]));
      if (it != ctx_.pending.end()) {
        columns.push_back(index);
        values.push_back(it->second);
      }
    }
    if (columns.empty()) {
      return success();
    }
    SQLPOST_TRY_ASSIGN(Statement * local, db_.cached("DELETE FROM sqlpost_context"));
    SQLPOST_TRY(local->run());  // no origin: a change of this site's own (replication/origin.h)
    SQLPOST_TRY_ASSIGN(const bool done, guarded(t, c, run_update(t, columns, values, c.key)));
    (void)done;  // a constraint failure is recorded by guarded(); the parent's row stays
    SQLPOST_TRY_ASSIGN(Statement * back,
                       db_.cached("INSERT INTO sqlpost_context(origin) VALUES (?)"));
    back->bind(1, ctx_.from_site);
    return back->run();
  }

  // The change without the columns this site changed after the parent saw its state.
  [[nodiscard]] WireChange without_pending(const TableBlock& t, const WireChange& c) const {
    WireChange kept = c;
    kept.columns.clear();
    kept.new_values.clear();
    kept.old_values.clear();
    for (std::size_t i = 0; i < c.columns.size(); ++i) {
      if (pending(t, c.key, t.columns[c.columns[i]])) {
        continue;
      }
      kept.columns.push_back(c.columns[i]);
      kept.new_values.push_back(c.new_values[i]);
      if (i < c.old_values.size()) {
        kept.old_values.push_back(c.old_values[i]);
      }
    }
    return kept;
  }

  Result<> apply_insert(const TableBlock& t, const WireChange& c) {
    if (pending(t, c.key, "*")) {
      return success();  // deleted here; the parent gets our delete
    }
    if (!ctx_.pending.empty()) {
      const WireChange kept = without_pending(t, c);
      if (kept.columns.size() != c.columns.size()) {
        SQLPOST_TRY_ASSIGN(const auto local, read_row(t, c.key, {}));
        if (local) {
          return apply_update(t, kept);
        }
        // Gone here (the parent deleted it first): the parent's row, then this site's
        // unseen values written again as a change of its own, which the parent applies
        // when it arrives (the insert, later in this site's log, would otherwise make
        // the earlier change look stale to the parent; replication/routing.cpp).
        SQLPOST_TRY_ASSIGN(const bool done, guarded(t, c, run_upsert(t, c)));
        stats_.inserted += done ? 1 : 0;
        return done ? write_pending_again(t, c) : success();
      }
    }
    if (ctx_.decides) {
      SQLPOST_TRY_ASSIGN(const bool held, child_holds_row(t, c));
      if (!held) {
        return success();
      }
      SQLPOST_TRY_ASSIGN(const auto local, read_row(t, c.key, names_of(t, c.columns)));
      if (local) {
        return resolve_and_update(t, c, *local, kConflictInsertExists);
      }
    }
    SQLPOST_TRY_ASSIGN(const bool done, guarded(t, c, run_upsert(t, c)));
    stats_.inserted += done ? 1 : 0;
    return success();
  }

  Result<> apply_update(const TableBlock& t, const WireChange& given) {
    if (pending(t, given.key, "*")) {
      return success();
    }
    WireChange filtered;
    const WireChange* c = &given;
    if (!ctx_.pending.empty()) {
      filtered = without_pending(t, given);
      c = &filtered;
    }
    if (c->columns.empty()) {
      return success();
    }
    if (!ctx_.decides) {
      return follow_update(t, *c);
    }
    SQLPOST_TRY_ASSIGN(const bool held, child_holds_row(t, *c));
    if (!held) {
      return success();
    }
    SQLPOST_TRY_ASSIGN(const auto local, read_row(t, c->key, names_of(t, c->columns)));
    if (!local) {
      decide_row(t, c->key);  // the origin still has the row: it gets the delete
      return record_missing(t, *c);
    }
    return resolve_and_update(t, *c, *local, kConflictUpdate);
  }

  // From the parent: its values, without reading the row first.
  Result<> follow_update(const TableBlock& t, const WireChange& c) {
    SQLPOST_TRY_ASSIGN(const bool done,
                       guarded(t, c, run_update(t, c.columns, c.new_values, c.key)));
    if (!done) {
      return success();
    }
    if (db_.changes() > 0) {
      ++stats_.updated;
      return success();
    }
    return record_missing(t, c);
  }

  Result<> record_missing(const TableBlock& t, const WireChange& c) {
    ++stats_.missing;
    ConflictRecord r = base_record(t, c.key, kConflictUpdateMissing);
    r.outcome = "skipped";
    r.detail = "no row with this key here";
    return record_only(r);
  }

  // A delete is checked like an update: its old values must be the row here. A row
  // changed or re-inserted since the sender saw it is a conflict, never deleted blindly.
  Result<> apply_delete(const TableBlock& t, const WireChange& c) {
    SQLPOST_TRY_ASSIGN(const bool held, child_holds_row(t, c));
    if (!held) {
      return success();
    }
    SQLPOST_TRY_ASSIGN(const auto local, read_row(t, c.key, names_of(t, c.columns)));
    if (!local) {
      ++stats_.missing;
      ConflictRecord r = base_record(t, c.key, kConflictDeleteMissing);
      r.outcome = "none";
      r.detail = "the row was already gone";
      return record_only(r);
    }
    const std::string changed = differing_columns(t, c, *local);
    if (!ctx_.decides && pending(t, c.key, "+")) {
      // This site changed the row after the parent last saw it: the parent decides
      // when this site's change arrives, and sends the decided row (or its absence).
      ConflictRecord r = base_record(t, c.key, kConflictDeleteChanged);
      r.outcome = "skipped";
      r.detail = "not deleted: this site inserted the row again after " + ctx_.from_site +
                 " last saw it; " + ctx_.from_site + " decides when that change arrives";
      return record_only(r);
    }
    if (ctx_.decides && !changed.empty()) {
      SQLPOST_TRY_ASSIGN(const bool incoming_wins, incoming_wins_by_policy(t, c));
      ConflictRecord r = base_record(t, c.key, kConflictDeleteChanged);
      r.local = Value::text(whole_row(t, c.key, c.columns, *local));
      r.old = Value::text(whole_row(t, c.key, c.columns, c.old_values));
      r.outcome = incoming_wins ? "incoming" : "local";
      r.detail =
          "the row was changed or re-inserted here after " + ctx_.from_site + " read it (" +
          changed + "); " +
          (incoming_wins ? "deleted, as the policy says"
                         : "kept, as the policy says; the row goes back to " + ctx_.from_site);
      SQLPOST_TRY(record_only(r));
      if (!incoming_wins) {
        decide_row(t, c.key);  // the origin deleted it: it gets the row back
        return success();
      }
    }
    SQLPOST_TRY_ASSIGN(const bool done, guarded(t, c, run_delete(t, c.key)));
    stats_.deleted += done && db_.changes() > 0 ? 1 : 0;
    return success();
  }

  // The row as SQL text for the conflicts table: ("id", "name") VALUES (1, 'x').
  static std::string whole_row(const TableBlock& t, const Row& key,
                               const std::vector<std::uint32_t>& columns, const Row& values) {
    std::vector<std::string> names(t.columns.begin(),
                                   t.columns.begin() + static_cast<std::ptrdiff_t>(t.key_count));
    Row row = key;
    for (std::size_t i = 0; i < columns.size() && i < values.size(); ++i) {
      names.push_back(t.columns[columns[i]]);
      row.push_back(values[i]);
    }
    return render_row(names, row);
  }

  // "name, qty": the columns whose value here is not the change's old value.
  static std::string differing_columns(const TableBlock& t, const WireChange& c, const Row& local) {
    std::string names;
    for (std::size_t i = 0; i < c.columns.size() && i < c.old_values.size(); ++i) {
      if (!(local[i] == c.old_values[i])) {
        names += (names.empty() ? "" : ", ") + t.columns[c.columns[i]];
      }
    }
    return names;
  }

  // True when this site changed any column of the row (or deleted or inserted it)
  // after the parent last saw its changes.
  [[nodiscard]] bool row_pending(const TableBlock& t, const Row& key) const {
    if (ctx_.pending.empty()) {
      return false;
    }
    const std::string prefix = row_column_key(t.table, key, "");
    const auto found = ctx_.pending.lower_bound(prefix);
    return found != ctx_.pending.end() && found->first.starts_with(prefix);
  }

  // ---- conflicts

  void decide_row(const TableBlock& t, const Row& key) {
    decided_.emplace(std::make_pair(t.table, render_key(key)), key);
  }

 public:
  // Notes the decided rows for the origin's next message (replication/bounce.h).
  Result<> send_decided_rows_back() {
    for (const auto& [where, key] : decided_) {
      SQLPOST_TRY(remember_decided_row(db_, ctx_.from_site, where.first, key));
    }
    return success();
  }

 private:
  // The values to write: the incoming ones, except where this site decides otherwise.
  Result<> resolve_and_update(const TableBlock& t, const WireChange& c, const Row& local,
                              std::string_view kind) {
    Row values = c.new_values;
    bool conflicted = false;
    if (ctx_.decides) {
      SQLPOST_TRY_ASSIGN(const bool incoming_wins, incoming_wins_by_policy(t, c));
      for (std::size_t i = 0; i < c.columns.size(); ++i) {
        const bool has_old = i < c.old_values.size();
        const bool unchanged_here = has_old && local[i] == c.old_values[i];
        if (unchanged_here || local[i] == c.new_values[i]) {
          continue;  // no conflict on this column
        }
        ConflictRecord r = base_record(t, c.key, kind);
        r.column = t.columns[c.columns[i]];
        r.local = local[i];
        r.old = has_old ? c.old_values[i] : Value();
        r.incoming = c.new_values[i];
        r.resolved = incoming_wins ? c.new_values[i] : local[i];
        r.outcome = incoming_wins ? "incoming" : "local";
        SQLPOST_TRY_ASSIGN(values[i], record(r));
        conflicted = true;
      }
    }
    if (conflicted && kind == kConflictInsertExists) {
      SQLPOST_TRY(record_collision(t, c, local, values));
    }
    SQLPOST_TRY_ASSIGN(const bool done, guarded(t, c, run_update(t, c.columns, values, c.key)));
    if (!done) {
      return success();
    }
    ++stats_.updated;
    if (conflicted) {
      decide_row(t, c.key);
    }
    return success();
  }

  // An insert–insert collision: both rows whole, and the row as decided, so the
  // losing row's data stays where an operator can find it (docs/keys.md).
  Result<> record_collision(const TableBlock& t, const WireChange& c, const Row& local,
                            const Row& decided) {
    ConflictRecord r = base_record(t, c.key, kConflictInsertCollision);
    r.local = Value::text(whole_row(t, c.key, c.columns, local));
    r.incoming = Value::text(whole_row(t, c.key, c.columns, c.new_values));
    r.resolved = Value::text(whole_row(t, c.key, c.columns, decided));
    r.outcome = decided == c.new_values ? "incoming" : (decided == local ? "local" : "merged");
    r.detail = ctx_.from_site + " inserted a row with a key that " + ctx_.local_site +
               " already holds with other values; the row that lost is in " +
               (r.outcome == "incoming" ? "local_value" : "incoming_value");
    return record_only(r);
  }

  const ConflictPolicy& policy_for(const std::string& table) const {
    static const ConflictPolicy kDefault;
    const auto found = ctx_.policies.find(table);
    return found == ctx_.policies.end() ? kDefault : found->second;
  }

  Result<bool> incoming_wins_by_policy(const TableBlock& t, const WireChange& c) {
    const ConflictPolicy& policy = policy_for(t.table);
    if (policy.kind == PolicyKind::kIncoming) {
      return true;
    }
    if (policy.kind == PolicyKind::kConsolidated) {
      return false;
    }
    SQLPOST_TRY_ASSIGN(const auto local, read_row(t, c.key, {policy.column}));
    const Value local_stamp = local ? local->front() : Value();
    Value incoming_stamp = local_stamp;  // the change does not touch the column: a tie
    for (std::size_t i = 0; i < c.columns.size() && i < c.new_values.size(); ++i) {
      if (t.columns[c.columns[i]] == policy.column) {
        incoming_stamp = c.new_values[i];
      }
    }
    const int order = compare_values(incoming_stamp, local_stamp);
    return order > 0 || (order == 0 && ctx_.from_site < ctx_.local_site);
  }

  // SQLite's ordering: NULL < numbers < text < blob; numbers by value, text/blob by bytes.
  static int compare_values(const Value& a, const Value& b) {
    const auto rank = [](const Value& v) {
      const auto& s = v.storage();
      if (std::holds_alternative<std::int64_t>(s) || std::holds_alternative<double>(s)) {
        return 1;
      }
      return std::holds_alternative<Text>(s) ? 2 : std::holds_alternative<Blob>(s) ? 3 : 0;
    };
    if (rank(a) != rank(b)) {
      return rank(a) < rank(b) ? -1 : 1;
    }
    const auto number = [](const Value& v) {
      const auto* i = std::get_if<std::int64_t>(&v.storage());
      return i != nullptr ? static_cast<long double>(*i)
                          : static_cast<long double>(std::get<double>(v.storage()));
    };
    switch (rank(a)) {
      case 1: return number(a) < number(b) ? -1 : (number(b) < number(a) ? 1 : 0);
      case 2: return std::get<Text>(a.storage()).bytes.compare(std::get<Text>(b.storage()).bytes);
      case 3: {
        const auto& x = std::get<Blob>(a.storage()).bytes;
        const auto& y = std::get<Blob>(b.storage()).bytes;
        return x < y ? -1 : (y < x ? 1 : 0);
      }
      default: return 0;
    }
  }

  ConflictRecord base_record(const TableBlock& t, const Row& key, std::string_view kind) const {
    ConflictRecord r;
    r.at = ctx_.now;
    r.table = t.table;
    r.row_key = render_key(key);
    r.kind = std::string(kind);
    r.from_site = ctx_.from_site;
    r.local_site = ctx_.local_site;
    r.policy = policy_for(t.table).text;
    return r;
  }

  Result<Value> record(const ConflictRecord& r) {
    ++stats_.conflicts;
    return record_conflict(db_, r);
  }

  Result<> record_only(const ConflictRecord& r) {
    auto recorded = record(r);
    if (!recorded.ok()) {
      return recorded.take_error();
    }
    return success();
  }

  Result<> record_foreign_key(const std::string& table, const Value& rowid,
                              const std::string& parent) {
    const std::string key = "rowid " + rowid.debug_string();
    SQLPOST_TRY_ASSIGN(Statement * seen,
                       db_.cached("SELECT count(*) FROM sqlpost_conflicts WHERE kind = ? AND "
                                  "table_name = ? AND row_key = ?"));
    seen->bind(1, kConflictForeignKey).bind(2, table).bind(3, key);
    SQLPOST_TRY(seen->step());
    const bool known = seen->column_int(0) > 0;
    seen->reset();
    if (known) {
      return success();
    }
    ConflictRecord r;
    r.at = ctx_.now;
    r.table = table;
    r.row_key = key;
    r.kind = std::string(kConflictForeignKey);
    r.from_site = ctx_.from_site;
    r.local_site = ctx_.local_site;
    r.policy = policy_for(table).text;
    r.outcome = "kept";
    r.detail = "references a row of '" + parent + "' that does not exist here";
    return record_only(r);
  }

  // The payload's tables and every table with a foreign key into one of them.
  Result<std::set<std::string>> tables_to_check(const std::deque<TableBlock>& blocks) {
    std::set<std::string> tables;
    for (const auto& t : blocks) {
      tables.insert(t.table);
    }
    SQLPOST_TRY_ASSIGN(Statement st,
                       db_.prepare("SELECT m.name, f.\"table\" FROM sqlite_master m, "
                                   "pragma_foreign_key_list(m.name) f WHERE m.type = 'table'"));
    std::set<std::string> referencing;
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool row, st.step());
      if (!row) {
        break;
      }
      if (tables.count(st.column_text(1)) > 0) {
        referencing.insert(st.column_text(0));
      }
    }
    tables.insert(referencing.begin(), referencing.end());
    return tables;
  }

  // ---- a parent's change that clashed with a constraint here

  // This site's own rows (written after the parent last saw its changes) that hold
  // the values the change gives a UNIQUE index: removed, so the parent's row wins; the
  // parent records the clash when this site's row arrives and sends its absence back.
  // False when another row clashes (one the parent holds too: nothing to remove).
  Result<bool> remove_own_clashing_rows(const TableBlock& t, const WireChange& c) {
    const std::vector<std::string> all(t.columns.begin() + static_cast<std::ptrdiff_t>(t.key_count),
                                       t.columns.end());
    SQLPOST_TRY_ASSIGN(const auto current, read_row(t, c.key, all));
    std::map<std::string, Value> image;
    for (std::size_t i = 0; i < t.key_count; ++i) {
      image[t.columns[i]] = c.key[i];
    }
    for (std::size_t i = 0; current && i < all.size(); ++i) {
      image[all[i]] = (*current)[i];
    }
    for (std::size_t i = 0; i < c.columns.size() && i < c.new_values.size(); ++i) {
      image[t.columns[c.columns[i]]] = c.new_values[i];
    }
    SQLPOST_TRY_ASSIGN(const auto indexes, unique_indexes(t.table));
    std::vector<Row> clashing;
    for (const auto& columns : indexes) {
      SQLPOST_TRY(rows_holding(t, columns, image, c.key, clashing));
    }
    for (const Row& key : clashing) {
      if (!row_pending(t, key)) {
        return false;
      }
    }
    for (const Row& key : clashing) {
      SQLPOST_TRY_ASSIGN(const auto row, read_row(t, key, all));
      if (!row) {
        continue;  // found through two indexes
      }
      ConflictRecord r = base_record(t, key, kConflictConstraint);
      std::vector<std::uint32_t> positions;
      for (std::size_t i = t.key_count; i < t.columns.size(); ++i) {
        positions.push_back(static_cast<std::uint32_t>(i));
      }
      r.local = Value::text(whole_row(t, key, positions, *row));
      r.outcome = "incoming";
      r.detail = "this site's row held a UNIQUE value that " + ctx_.from_site + "'s row " +
                 render_key(c.key) + " has; removed here, " + ctx_.from_site +
                 " decides when it arrives there";
      SQLPOST_TRY(record_only(r));
      SQLPOST_TRY(run_delete(t, key));
    }
    return !clashing.empty();
  }

  // The column lists of the table's UNIQUE indexes (not the primary key; not
  // expression indexes).
  Result<std::vector<std::vector<std::string>>> unique_indexes(const std::string& table) {
    SQLPOST_TRY_ASSIGN(Statement list,
                       db_.prepare("SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1 "
                                   "AND origin <> 'pk'"));
    list.bind(1, table);
    std::vector<std::vector<std::string>> indexes;
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool row, list.step());
      if (!row) {
        break;
      }
      SQLPOST_TRY_ASSIGN(Statement info, db_.prepare("SELECT name FROM pragma_index_info(?) "
                                                     "ORDER BY seqno"));
      info.bind(1, list.column_text(0));
      std::vector<std::string> columns;
      bool plain = true;
      for (;;) {
        SQLPOST_TRY_ASSIGN(const bool col, info.step());
        if (!col) {
          break;
        }
        plain = plain && !info.column(0).is_null();
        columns.push_back(info.column_text(0));
      }
      if (plain && !columns.empty()) {
        indexes.push_back(std::move(columns));
      }
    }
    return indexes;
  }

  // Keys of the other rows whose `columns` hold the values of `image`.
  Result<> rows_holding(const TableBlock& t, const std::vector<std::string>& columns,
                        const std::map<std::string, Value>& image, const Row& key,
                        std::vector<Row>& found) {
    std::string keys;
    std::string where;
    Row values;
    for (const auto& column : columns) {
      const auto v = image.find(column);
      if (v == image.end() || v->second.is_null()) {
        return success();  // not carried, or NULL: no clash through this index
      }
      where += (where.empty() ? "" : " AND ") + quote_identifier(column) + " = ?";
      values.push_back(v->second);
    }
    std::string other;
    for (std::size_t i = 0; i < t.key_count; ++i) {
      keys += (i == 0 ? "" : ", ") + quote_identifier(t.columns[i]);
      other += (i == 0 ? "" : " AND ") + quote_identifier(t.columns[i]) + " IS ?";
      values.push_back(key[i]);
    }
    SQLPOST_TRY_ASSIGN(Statement st,
                       db_.prepare("SELECT " + keys + " FROM " + quote_identifier(t.table) +
                                   " WHERE " + where + " AND NOT (" + other + ")"));
    for (std::size_t i = 0; i < values.size(); ++i) {
      st.bind(static_cast<int>(i + 1), values[i]);
    }
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool row, st.step());
      if (!row) {
        break;
      }
      Row k;
      for (std::size_t i = 0; i < t.key_count; ++i) {
        k.push_back(st.column(static_cast<int>(i)));
      }
      found.push_back(std::move(k));
    }
    return success();
  }

 public:
  // The parent's changes that failed a constraint, tried again after the rest of
  // the message; one still failing removes this site's own clashing rows (UNIQUE)
  // and is tried a last time, recording the clash if it still fails.
  Result<> retry_failed_changes() {
    auto failed = std::move(deferred_);
    for (const auto& [t, c] : failed) {
      mode_ = Mode::kRetry;
      failed_ = false;
      SQLPOST_TRY(apply(*t, c));
      if (!failed_) {
        continue;
      }
      SQLPOST_TRY(remove_own_clashing_rows(*t, c));
      mode_ = Mode::kRecord;
      SQLPOST_TRY(apply(*t, c));
    }
    return success();
  }

 private:
  enum class Mode { kDefer, kRetry, kRecord };

  Database& db_;
  const ApplyContext& ctx_;
  ApplyStats& stats_;
  Mode mode_ = Mode::kDefer;
  bool failed_ = false;
  std::vector<std::pair<const TableBlock*, WireChange>> deferred_;
  // Rows to send back to the origin: (table, rendered key) -> key.
  std::map<std::pair<std::string, std::string>, Row> decided_;
  std::map<std::string, CaptureLayout> layouts_;           // for child_holds_row
  std::unordered_map<std::string, Statement> statements_;  // statement_for()
  std::string statement_key_;
};

}  // namespace

// A message's state across its batches: tables at stable addresses (deferred
// changes point at them), which tables were checked and authorized, the applier
// with its deferred changes and decided rows.
struct ApplySession::State {
  State(Database& d, ApplyContext c) : db(d), context(std::move(c)), applier(d, context, stats) {}
  Database& db;
  ApplyContext context;
  ApplyStats stats;
  Applier applier;
  std::deque<TableBlock> tables;
  std::vector<bool> checked;        // against this site's schema
  std::vector<bool> authorized;     // against the sender's grant
  std::set<std::string> announced;  // tables an article record from the parent adds first
};

void ApplySession::StateFree::operator()(State* s) const { std::default_delete<State>()(s); }

Result<ApplySession> ApplySession::begin(Database& db, const ApplyContext& context) {
  if (!db.in_transaction()) {
    return make_error(Errc::kInternal, "apply needs the caller's write transaction");
  }
  SQLPOST_TRY(db.exec("PRAGMA defer_foreign_keys = ON"));
  ApplySession session;
  session.state_.reset(std::make_unique<State>(db, context).release());
  return session;
}

Result<> ApplySession::adopt_tables(const Payload& batch) {
  State& s = *state_;
  if (batch.tables.size() < s.tables.size()) {
    return make_error(Errc::kInternal, "a batch lost tables of its message");
  }
  for (std::size_t i = s.tables.size(); i < batch.tables.size(); ++i) {
    s.tables.push_back(batch.tables[i]);
  }
  s.checked.resize(s.tables.size(), false);
  s.authorized.resize(s.tables.size(), false);
  return success();
}

// A message naming a table outside the sender's grant is refused (the caller's
// transaction rolls back whatever of it was applied).
Result<> ApplySession::authorize(const Payload& batch) {
  State& s = *state_;
  if (!s.context.authorization) {
    return success();
  }
  for (const auto& epoch : batch.epochs) {
    for (const auto& change : epoch.changes) {
      if (change.op == ChangeOp::kArticleAdded && !s.context.decides) {
        s.announced.insert(std::get<Text>(change.key[1].storage()).bytes);
      }
      if (!is_control_op(change.op) && !s.authorized[change.table] &&
          s.announced.count(s.tables[change.table].table) == 0) {
        s.authorized[change.table] = true;
        SQLPOST_TRY(s.context.authorization->check_block(s.tables[change.table]));
      }
    }
  }
  return success();
}

Result<> ApplySession::apply_one(std::int64_t epoch, const WireChange& change) {
  State& s = *state_;
  if (change.op == ChangeOp::kPassthrough) {
    if (s.context.decides) {  // SQL only flows down: a child never sends it
      return make_error(Errc::kUnsupported, "message from child site " + s.context.from_site +
                                                " carries passthrough SQL, which only a "
                                                "parent may send; not run");
    }
    s.applier.forget_statements();
    SQLPOST_TRY(s.applier.apply_passthrough(change));
    ++s.stats.passthrough;
    return success();
  }
  if (is_control_op(change.op)) {
    s.applier.forget_statements();
    SQLPOST_TRY(apply_article_record(s.db, change, s.context.from_site, s.context.decides));
    ++s.stats.publication_changes;
    return success();
  }
  const TableBlock& table = s.tables[change.table];
  // Tables are checked when first used: passthrough SQL earlier in the message may
  // have added what later changes need.
  if (!s.checked[change.table]) {
    SQLPOST_TRY(check_table(s.db, table));
    s.checked[change.table] = true;
  }
  auto applied = s.applier.apply(table, change);
  if (!applied.ok()) {
    Error e = applied.take_error();
    e.message = "applying a change to '" + table.table + "' (epoch " + std::to_string(epoch) +
                "): " + e.message;
    return e;
  }
  return success();
}

Result<> ApplySession::apply(const Payload& batch) {
  SQLPOST_TRY(adopt_tables(batch));
  SQLPOST_TRY(authorize(batch));
  for (const auto& epoch : batch.epochs) {
    for (const auto& change : epoch.changes) {
      SQLPOST_TRY(apply_one(epoch.epoch, change));
    }
  }
  return success();
}

Result<ApplyStats> ApplySession::finish() {
  State& s = *state_;
  SQLPOST_TRY(s.applier.retry_failed_changes());
  SQLPOST_TRY(s.applier.send_decided_rows_back());
  SQLPOST_TRY(seed_key_ranges(s.db));  // other sites' rows may lie above this site's keys
  SQLPOST_TRY(s.applier.check_foreign_keys(s.tables));
  return s.stats;
}

Result<ApplyStats> apply_payload(Database& db, const Payload& payload,
                                 const ApplyContext& context) {
  SQLPOST_TRY_ASSIGN(ApplySession session, ApplySession::begin(db, context));
  SQLPOST_TRY(session.apply(payload));
  return session.finish();
}

}  // namespace sqlpost
