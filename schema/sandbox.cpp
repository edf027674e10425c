#include "schema/sandbox.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>

namespace sqlpost {
namespace {

constexpr std::string_view kReserved = "sqlpost_";
constexpr std::string_view kCaptureTrigger = "sqlpost_capture_";

bool starts_with(const char* text, std::string_view prefix) {
  return text != nullptr && std::string_view(text).substr(0, prefix.size()) == prefix;
}

std::string lower(const char* text) {
  std::string s = text != nullptr ? text : "";
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool safe_pragma(const char* name) {
  const std::string n = lower(name);
  return std::find(kSafePragmas.begin(), kSafePragmas.end(), n) != kSafePragmas.end();
}

bool forbidden_function(const char* name) {
  const std::string n = lower(name);
  return n == "load_extension" || n == "readfile" || n == "writefile" || n == "edit" ||
         n == "fts3_tokenizer";
}

// Why an action is refused; empty when it is allowed.
std::string refusal_for(int action, const char* a1, const char* a2, const char* trigger) {
  switch (action) {
    case SQLITE_ATTACH: return "ATTACH is not allowed in passthrough SQL";
    case SQLITE_DETACH: return "DETACH is not allowed in passthrough SQL";
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return "transaction control is not allowed in passthrough SQL (it runs inside the "
             "apply transaction)";
    case SQLITE_PRAGMA:
      return safe_pragma(a1) ? "" : "PRAGMA " + lower(a1) + " is not allowed in passthrough SQL";
    case SQLITE_FUNCTION:
      return forbidden_function(a2)
                 ? "function " + lower(a2) + "() is not allowed in passthrough SQL"
                 : "";
    default: break;
  }
  // Tables, indexes, triggers and views named sqlpost_* are sqlpost's own.
  const char* object = nullptr;
  switch (action) {
    case SQLITE_READ:
    case SQLITE_UPDATE:
    case SQLITE_INSERT:
    case SQLITE_DELETE:
    case SQLITE_ALTER_TABLE:
    case SQLITE_ANALYZE:
      object = action == SQLITE_ALTER_TABLE ? a2 : a1;
      if (starts_with(trigger, kCaptureTrigger)) {
        return "";  // sqlpost's capture triggers write the change log
      }
      break;
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_TEMP_TRIGGER:
      if (starts_with(a1, kReserved) || starts_with(a2, kReserved)) {
        return "passthrough SQL may not create or drop '" + std::string(a1 != nullptr ? a1 : "") +
               "' (names sqlpost_* are sqlpost's own)";
      }
      return "";
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_VIEW:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE: object = a1; break;
    default: return "";
  }
  if (starts_with(object, kReserved)) {
    return "passthrough SQL may not use table '" + std::string(object) +
           "' (tables sqlpost_* are sqlpost's own)";
  }
  return "";
}

int authorize(void* user, int action, const char* a1, const char* a2, const char* /*db*/,
              const char* trigger) {
  auto* state = static_cast<SqlSandbox::State*>(user);
  std::string why = refusal_for(action, a1, a2, trigger);
  if (why.empty()) {
    return SQLITE_OK;
  }
  if (state->refusal.empty()) {
    state->refusal = std::move(why);
  }
  return SQLITE_DENY;
}

}  // namespace

Result<SqlSandbox> SqlSandbox::enter(Database& db) {
  int previous = 0;
  if (sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_DEFENSIVE, -1, &previous) != SQLITE_OK ||
      sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr) != SQLITE_OK) {
    return make_error(Errc::kDatabase, "cannot switch SQLite's defensive mode on");
  }
  SqlSandbox sandbox(db, previous);
  sqlite3_set_authorizer(db.handle(), authorize, sandbox.state_.get());
  return sandbox;
}

SqlSandbox::SqlSandbox(Database& db, int previous_defensive)
    : db_(&db), previous_defensive_(previous_defensive), state_(std::make_unique<State>()) {}

SqlSandbox::SqlSandbox(SqlSandbox&& other) noexcept
    : db_(other.db_),
      previous_defensive_(other.previous_defensive_),
      state_(std::move(other.state_)) {
  other.db_ = nullptr;
}

SqlSandbox::~SqlSandbox() {
  if (db_ == nullptr) {
    return;
  }
  sqlite3_set_authorizer(db_->handle(), nullptr, nullptr);
  sqlite3_db_config(db_->handle(), SQLITE_DBCONFIG_DEFENSIVE, previous_defensive_, nullptr);
}

namespace {

struct DefinitionState {
  DefinitionKind kind = DefinitionKind::kTable;
  std::string table;  // lower case
  std::string refusal;
};

bool is_schema_table(const char* name) {
  const std::string n = lower(name);
  return n == "sqlite_master" || n == "sqlite_schema";
}

// Why an action of a table definition is refused; empty when it is allowed.
std::string definition_refusal(const DefinitionState& d, int action, const char* a1,
                               const char* a2) {
  const bool own_table = lower(action == SQLITE_CREATE_INDEX ? a2 : a1) == d.table;
  switch (action) {
    case SQLITE_INSERT:  // the new catalog row, completed by an update
    case SQLITE_UPDATE: return is_schema_table(a1) ? "" : "writes to '" + lower(a1) + "'";
    case SQLITE_READ:  // the catalog, and the table an index is built from
      return is_schema_table(a1) || own_table ? "" : "reads '" + lower(a1) + "'";
    case SQLITE_CREATE_TABLE:
      return d.kind == DefinitionKind::kTable && own_table ? ""
                                                           : "creates table '" + lower(a1) + "'";
    case SQLITE_CREATE_INDEX:  // also the automatic indexes of PRIMARY KEY and UNIQUE
      if (starts_with(a1, kReserved)) {
        return "creates index '" + lower(a1) + "' (names sqlpost_* are sqlpost's own)";
      }
      return own_table ? "" : "creates index on '" + lower(a2) + "'";
    case SQLITE_REINDEX:  // an index being built
      return d.kind == DefinitionKind::kIndex ? "" : "reindexes";
    case SQLITE_FUNCTION: return forbidden_function(a2) ? "calls " + lower(a2) + "()" : "";
    default:
      return "is not a plain CREATE " +
             std::string(d.kind == DefinitionKind::kTable ? "TABLE" : "INDEX") + " (action " +
             std::to_string(action) + ")";
  }
}

int authorize_definition(void* user, int action, const char* a1, const char* a2, const char* /*db*/,
                         const char* /*trigger*/) {
  auto* state = static_cast<DefinitionState*>(user);
  std::string why = definition_refusal(*state, action, a1, a2);
  if (why.empty()) {
    return SQLITE_OK;
  }
  if (state->refusal.empty()) {
    state->refusal = std::move(why);
  }
  return SQLITE_DENY;
}

bool only_whitespace(const char* text) {
  for (; text != nullptr && *text != '\0'; ++text) {
    if (std::isspace(static_cast<unsigned char>(*text)) == 0) {
      return false;
    }
  }
  return true;
}

struct StatementFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

}  // namespace

Result<> run_definition(Database& db, DefinitionKind kind, std::string_view table,
                        std::string_view sql) {
  const std::string what = "not authorized: the definition of table '" + std::string(table) + "'";
  if (starts_with(lower(std::string(table).c_str()).c_str(), kReserved)) {
    return make_error(Errc::kAuthentication, what + " names a table sqlpost_*, sqlpost's own");
  }
  DefinitionState state{kind, lower(std::string(table).c_str()), {}};
  SQLPOST_TRY_ASSIGN(const SqlSandbox sandbox, SqlSandbox::enter(db));  // defensive mode
  sqlite3_set_authorizer(db.handle(), authorize_definition, &state);
  const std::string text(sql);
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const int rc =
      sqlite3_prepare_v2(db.handle(), text.c_str(), static_cast<int>(text.size() + 1), &raw, &tail);
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement(raw);
  if (!state.refusal.empty()) {
    return make_error(Errc::kAuthentication, what + " refused: the statement " + state.refusal);
  }
  if (statement == nullptr) {  // an error (e.g. a column left out here), or only a comment
    return make_error(
        rc != SQLITE_OK ? Errc::kUnsupported : Errc::kAuthentication,
        what + " cannot run here: " +
            (rc != SQLITE_OK ? sqlite3_errmsg(db.handle()) : std::string("it holds no statement")));
  }
  if (!only_whitespace(tail)) {
    return make_error(Errc::kAuthentication, what + " refused: more than one statement");
  }
  if (sqlite3_step(statement.get()) != SQLITE_DONE) {
    return database_error(db.handle(), sqlite3_errcode(db.handle()), what);
  }
  return success();
}

}  // namespace sqlpost
