#include "schema/db.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <thread>

#include "common/hex.h"

namespace sqlpost {
namespace {

// Polls for a lock: short sleeps first (an application's gap between two commits
// is often well under a millisecond), longer ones after, until the limit.
extern "C" int poll_for_lock(void* state, int attempts) {
  auto* wait = static_cast<Database::LockWait*>(state);
  const auto now = std::chrono::steady_clock::now();
  if (attempts == 0) {
    wait->started = now;
  }
  if (now - wait->started >= wait->limit) {
    return 0;  // give up: the statement returns SQLITE_BUSY
  }
  constexpr int kQuickAttempts = 200;
  constexpr int kMediumAttempts = 2000;
  const auto pause = attempts < kQuickAttempts    ? std::chrono::microseconds(50)
                     : attempts < kMediumAttempts ? std::chrono::microseconds(500)
                                                  : std::chrono::microseconds(2000);
  std::this_thread::sleep_for(pause);
  return 1;
}

int open_flags(Database::Mode mode) {
  switch (mode) {
    case Database::Mode::kReadWrite: return SQLITE_OPEN_READWRITE;
    case Database::Mode::kReadWriteCreate: return SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    case Database::Mode::kReadOnly: return SQLITE_OPEN_READONLY;
  }
  return SQLITE_OPEN_READONLY;
}

std::string hex_prefix(const std::vector<std::uint8_t>& bytes) {
  constexpr std::size_t kShown = 16;
  const std::string out = hex_encode(std::span(bytes).first(std::min(bytes.size(), kShown)));
  return bytes.size() > kShown ? out + "..." : out;
}

}  // namespace

std::string Value::debug_string() const {
  struct Render {
    std::string operator()(const Null&) const { return "NULL"; }
    std::string operator()(std::int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      std::array<char, 32> buf{};
      (void)std::snprintf(buf.data(), buf.size(), "%.17g", v);
      return buf.data();
    }
    std::string operator()(const Text& t) const { return quote_literal(t.bytes); }
    std::string operator()(const Blob& b) const { return "x'" + hex_prefix(b.bytes) + "'"; }
  };
  return std::visit(Render{}, v_);
}

Error database_error(sqlite3* db, int rc, std::string_view context) {
  const int primary = rc & 0xff;
  const Errc code =
      (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) ? Errc::kBusy : Errc::kDatabase;
  std::string message(context);
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return make_error(code, std::move(message));
}

// ---- Statement

void Statement::Finalizer::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }

Statement& Statement::bind(int index, const Value& value) { return bind_value(index, value, true); }

Statement& Statement::bind_static(int index, const Value& value) {
  return bind_value(index, value, false);
}

Statement& Statement::bind_value(int index, const Value& value, bool copy) {
  int rc = SQLITE_OK;
  sqlite3_stmt* s = stmt_.get();
  struct Binder {
    sqlite3_stmt* s;
    int i;
    sqlite3_destructor_type lifetime;
    int operator()(const Null&) const { return sqlite3_bind_null(s, i); }
    int operator()(std::int64_t v) const { return sqlite3_bind_int64(s, i, v); }
    int operator()(double v) const { return sqlite3_bind_double(s, i, v); }
    int operator()(const Text& t) const {
      return sqlite3_bind_text64(s, i, t.bytes.data(), t.bytes.size(), lifetime, SQLITE_UTF8);
    }
    int operator()(const Blob& b) const {
      // A zero-length blob must stay a BLOB, not become NULL.
      if (b.bytes.empty()) {
        return sqlite3_bind_zeroblob(s, i, 0);
      }
      return sqlite3_bind_blob64(s, i, b.bytes.data(), b.bytes.size(), lifetime);
    }
  };
  rc = std::visit(Binder{s, index, copy ? SQLITE_TRANSIENT : SQLITE_STATIC}, value.storage());
  if (rc != SQLITE_OK && !bind_failed_) {
    bind_failed_ = true;
    bind_error_ = sqlite3_errstr(rc);
  }
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  return bind(index, Value::text(std::string(text)));
}

Statement& Statement::bind(int index, std::int64_t value) { return bind(index, Value(value)); }

Statement& Statement::bind_null(int index) { return bind(index, Value()); }

Result<bool> Statement::step() {
  if (bind_failed_) {
    return make_error(Errc::kDatabase, "binding a parameter failed: " + bind_error_);
  }
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  std::string context = "executing ";
  const char* sql = sqlite3_sql(stmt_.get());
  context += sql != nullptr ? std::string(sql).substr(0, 120) : "statement";
  Error error = database_error(db_, rc, context);
  sqlite3_reset(stmt_.get());
  return error;
}

Result<> Statement::run() {
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, step());
    if (!row) {
      break;
    }
  }
  reset();
  return success();
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_failed_ = false;
  bind_error_.clear();
}

int Statement::column_count() const { return sqlite3_column_count(stmt_.get()); }

Value Statement::column(int index) const {
  sqlite3_stmt* s = stmt_.get();
  switch (sqlite3_column_type(s, index)) {
    case SQLITE_INTEGER: return {static_cast<std::int64_t>(sqlite3_column_int64(s, index))};
    case SQLITE_FLOAT: return {sqlite3_column_double(s, index)};
    case SQLITE_TEXT: {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, index));
      const int n = sqlite3_column_bytes(s, index);
      return Value(Text{std::string(p, static_cast<std::size_t>(n))});
    }
    case SQLITE_BLOB: {
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, index));
      const int n = sqlite3_column_bytes(s, index);
      return Value(Blob{std::vector<std::uint8_t>(p, p + n)});
    }
    default: return {};
  }
}

std::int64_t Statement::column_int(int index) const {
  return sqlite3_column_int64(stmt_.get(), index);
}

std::string Statement::column_text(int index) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), index));
  if (p == nullptr) {
    return {};
  }
  return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_.get(), index))};
}

bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_.get(), index) == SQLITE_NULL;
}

std::string Statement::column_name(int index) const {
  const char* name = sqlite3_column_name(stmt_.get(), index);
  return name != nullptr ? name : "";
}

// ---- Database

void Database::Closer::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Database::Database(std::string path, sqlite3* db)
    : path_(std::move(path)),
      cache_(std::make_unique<std::unordered_map<std::string, Statement>>()),
      lock_wait_(std::make_unique<LockWait>()),
      db_(db) {}

Database::~Database() {
  if (cache_) {
    cache_->clear();
  }
}

Result<Database> Database::open(const std::string& path, Mode mode) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, open_flags(mode) | SQLITE_OPEN_NOMUTEX, nullptr);
  Database db(path, raw);  // owns raw even on failure
  if (rc != SQLITE_OK) {
    return database_error(raw, rc, "opening " + path);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_handler(raw, poll_for_lock, db.lock_wait_.get());
  return db;
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  Statement statement(db_.get(), raw);
  if (rc != SQLITE_OK) {
    return database_error(db_.get(), rc, "preparing " + std::string(sql.substr(0, 200)));
  }
  return statement;
}

Result<Statement*> Database::cached(const std::string& sql) {
  auto it = cache_->find(sql);
  if (it == cache_->end()) {
    SQLPOST_TRY_ASSIGN(Statement statement, prepare(sql));
    it = cache_->emplace(sql, std::move(statement)).first;
  }
  it->second.reset();
  return &it->second;
}

void Database::clear_cache() { cache_->clear(); }

void Database::set_lock_wait(std::chrono::milliseconds wait) { lock_wait_->limit = wait; }

Result<> Database::exec(std::string_view sql) {
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    const int primary = rc & 0xff;
    return make_error(
        primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? Errc::kBusy : Errc::kDatabase, detail);
  }
  return success();
}

Result<std::int64_t> Database::query_int(std::string_view sql, std::int64_t fallback) {
  SQLPOST_TRY_ASSIGN(Statement statement, prepare(sql));
  SQLPOST_TRY_ASSIGN(const bool row, statement.step());
  if (!row || statement.column_is_null(0)) {
    return fallback;
  }
  return statement.column_int(0);
}

std::int64_t Database::changes() const { return sqlite3_changes64(db_.get()); }

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }

bool Database::in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

// ---- Transaction

Result<Transaction> Transaction::begin(Database& db, Kind kind) {
  SQLPOST_TRY(db.exec(kind == Kind::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

Transaction::~Transaction() {
  if (db_ != nullptr && db_->in_transaction()) {
    (void)db_->exec("ROLLBACK");
  }
}

Result<> Transaction::commit() {
  Database* db = db_;
  db_ = nullptr;
  Result<> committed = db->exec("COMMIT");
  if (!committed.ok() && db->in_transaction()) {
    (void)db->exec("ROLLBACK");
  }
  return committed;
}

// Begin and release are cached statements: a pass takes a savepoint per partner.
Result<Savepoint> Savepoint::begin(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SAVEPOINT sqlpost_step"));
  SQLPOST_TRY(st->run());
  return Savepoint(&db);
}

Savepoint::Savepoint(Savepoint&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

Savepoint::~Savepoint() {
  if (db_ != nullptr && db_->in_transaction()) {
    (void)db_->exec("ROLLBACK TO sqlpost_step");
    (void)db_->exec("RELEASE sqlpost_step");
  }
}

Result<> Savepoint::release() {
  Database* db = db_;
  db_ = nullptr;
  SQLPOST_TRY_ASSIGN(Statement * st, db->cached("RELEASE sqlpost_step"));
  return st->run();
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  return out + "'";
}

}  // namespace sqlpost
