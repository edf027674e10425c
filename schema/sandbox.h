// sqlpost/schema/sandbox.h — running SQL a partner sent (passthrough) with no
// way out of the replica.
//
// Contract: while a SqlSandbox is alive, the connection has SQLite's defensive
// mode on (no writes to sqlite_schema, no writable_schema, no shadow-table
// corruption) and an authorizer that refuses, at prepare time: ATTACH and DETACH;
// BEGIN/COMMIT/ROLLBACK/SAVEPOINT (the SQL runs inside the caller's apply
// transaction); every PRAGMA except kSafePragmas; the functions load_extension,
// readfile, writefile, edit and fts3_tokenizer; and any access to, or creation or removal of, an
// object named sqlpost_* — except what sqlpost's own capture triggers do. The first refusal is kept
// in refusal() for the error message. (VACUUM and VACUUM INTO have no authorizer code; they cannot
// run inside the apply transaction, so they fail there.) The destructor restores the previous
// authorizer state (none) and defensive flag. docs/security.md lists the rules.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "schema/db.h"

namespace sqlpost {

// PRAGMAs passthrough SQL may use: reading the schema, and deferring foreign keys.
inline constexpr std::array<std::string_view, 11> kSafePragmas = {
    "table_info",         "table_xinfo",     "table_list",       "index_list",
    "index_info",         "index_xinfo",     "foreign_key_list", "foreign_key_check",
    "defer_foreign_keys", "integrity_check", "quick_check"};

// A table definition a parent sent with a live publication change
// (docs/security.md): run_definition() runs `sql` only when it is exactly one
// statement that creates the table `table` (kTable: a plain CREATE TABLE — not
// TEMP, not virtual, not AS SELECT) or one index on it (kIndex), in defensive
// mode, under an authorizer that refuses every other action. Anything else is
// Errc::kAuthentication naming why, and nothing runs. Names sqlpost_* are refused.
enum class DefinitionKind { kTable, kIndex };
Result<> run_definition(Database& db, DefinitionKind kind, std::string_view table,
                        std::string_view sql);

class SqlSandbox {
 public:
  static Result<SqlSandbox> enter(Database& db);
  SqlSandbox(SqlSandbox&& other) noexcept;
  SqlSandbox& operator=(SqlSandbox&&) = delete;
  SqlSandbox(const SqlSandbox&) = delete;
  SqlSandbox& operator=(const SqlSandbox&) = delete;
  ~SqlSandbox();

  // Why the last statement was refused; empty when nothing was.
  [[nodiscard]] const std::string& refusal() const { return state_->refusal; }

  struct State {
    std::string refusal;
  };

 private:
  SqlSandbox(Database& db, int previous_defensive);
  Database* db_;
  int previous_defensive_ = 0;
  std::unique_ptr<State> state_;  // the authorizer's user data: a stable address
};

}  // namespace sqlpost
