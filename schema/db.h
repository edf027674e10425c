// sqlpost/schema/db.h — RAII ownership of SQLite handles and the Result-based
// access every other module uses.
//
// Contract: Database owns one sqlite3* and Statement owns one sqlite3_stmt*;
// they are the only places that close or finalize those handles. All calls
// return Result<>; SQLite errors become Errc::kDatabase (Errc::kBusy for
// SQLITE_BUSY/LOCKED) with SQLite's message. Not thread-safe: one Database per
// thread. A Transaction rolls back unless commit() succeeded; a Savepoint rolls
// back to where it began unless release() succeeded.
// Lock waits: when another connection holds the write lock, a connection polls
// for it every 50 µs to 2 ms (SQLite's own busy timeout sleeps up to 100 ms and
// loses the lock to an application that commits back to back) for at most
// lock_wait (30 s unless set_lock_wait() says otherwise), then gives Errc::kBusy.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "schema/value.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sqlpost {

class Database;

class Statement {
 public:
  Statement() = default;
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() = default;

  // Binding is 1-based like SQLite.
  Statement& bind(int index, const Value& value);
  // Binds without copying: `value` must stay alive and unchanged until reset().
  Statement& bind_static(int index, const Value& value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::int64_t value);
  Statement& bind_null(int index);
  // Steps once: true when a row is available, false when done.
  Result<bool> step();
  // Steps until done (for statements without results).
  Result<> run();
  void reset();
  // Every result row, each turned into a T by `row` (called with this statement
  // positioned on the row); the statement is reset afterwards.
  template <typename RowFn>
  auto rows(RowFn row) -> Result<std::vector<decltype(row(std::declval<const Statement&>()))>> {
    std::vector<decltype(row(std::declval<const Statement&>()))> out;
    for (;;) {
      auto stepped = step();
      if (!stepped.ok()) {
        reset();
        return stepped.take_error();
      }
      if (!stepped.value()) {
        reset();
        return out;
      }
      out.push_back(row(*this));
    }
  }

  [[nodiscard]] int column_count() const;
  [[nodiscard]] Value column(int index) const;
  [[nodiscard]] std::int64_t column_int(int index) const;
  [[nodiscard]] std::string column_text(int index) const;
  [[nodiscard]] bool column_is_null(int index) const;
  [[nodiscard]] std::string column_name(int index) const;

 private:
  friend class Database;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  Statement& bind_value(int index, const Value& value, bool copy);
  bool bind_failed_ = false;
  std::string bind_error_;
};

class Database {
 public:
  enum class Mode { kReadWrite, kReadWriteCreate, kReadOnly };

  static Result<Database> open(const std::string& path, Mode mode);

  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Result<Statement> prepare(std::string_view sql);
  // A statement kept for the life of the connection (or until clear_cache()).
  Result<Statement*> cached(const std::string& sql);
  void clear_cache();
  Result<> exec(std::string_view sql);
  // Runs a query expected to produce one integer (NULL -> fallback).
  Result<std::int64_t> query_int(std::string_view sql, std::int64_t fallback = 0);

  [[nodiscard]] std::int64_t changes() const;
  [[nodiscard]] std::int64_t last_insert_rowid() const;
  [[nodiscard]] bool in_transaction() const;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] sqlite3* handle() const { return db_.get(); }
  // How long a statement waits for a lock another connection holds.
  void set_lock_wait(std::chrono::milliseconds wait);

  // Deadline-bounded polling for a lock (the sqlite3_busy_handler's state).
  struct LockWait {
    std::chrono::milliseconds limit{30000};
    std::chrono::steady_clock::time_point started;
  };

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  Database(std::string path, sqlite3* db);
  std::string path_;
  std::unique_ptr<std::unordered_map<std::string, Statement>> cache_;
  std::unique_ptr<LockWait> lock_wait_;  // stable address for the busy handler
  std::unique_ptr<sqlite3, Closer> db_;  // declared last: destroyed after the cache
};

Error database_error(sqlite3* db, int rc, std::string_view context);

// Write or read transaction; rolls back on destruction unless committed.
class Transaction {
 public:
  enum class Kind { kDeferred, kImmediate };
  static Result<Transaction> begin(Database& db, Kind kind = Kind::kImmediate);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Result<> commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

// A savepoint inside an open transaction: rolled back to (and released) on
// destruction unless release() succeeded, so one step's failure undoes that step only.
class Savepoint {
 public:
  static Result<Savepoint> begin(Database& db);
  Savepoint(Savepoint&& other) noexcept;
  Savepoint& operator=(Savepoint&&) = delete;
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  ~Savepoint();
  Result<> release();

 private:
  explicit Savepoint(Database* db) : db_(db) {}
  Database* db_;
};

// Quotes an SQL identifier: "name" with embedded quotes doubled.
std::string quote_identifier(std::string_view name);
// Quotes an SQL string literal: 'text' with embedded quotes doubled.
std::string quote_literal(std::string_view text);

}  // namespace sqlpost
