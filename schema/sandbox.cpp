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

}  // namespace sqlpost
