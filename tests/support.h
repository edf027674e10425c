// sqlpost/tests/support.h — helpers shared by the test programs: scratch
// folders, running the sqlpost binary, and the convergence oracle that compares
// two databases row by row.
#pragma once

#include <string>
#include <vector>

#include "schema/db.h"

namespace sqlpost::test {

// A fresh empty folder for one test case, removed at destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  [[nodiscard]] std::string path(const std::string& name) const { return dir_ + "/" + name; }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line; returns its exit code and output.
CommandResult run_command(const std::string& command_line);
// Runs the sqlpost binary under test with the given arguments (already quoted).
CommandResult run_sqlpost(const std::string& arguments);
std::string shell_quote(const std::string& text);
// The whole content of the file at `path` (empty when it cannot be read).
std::string read_file(const std::string& path);

// Runs sqlpost with `arguments` and REQUIREs exit code 0 (prints the output if not).
void sqlpost_ok(const std::string& arguments);
// Runs `sql` with the sqlite3 command-line shell on `db` (another program than ours).
void sqlite_shell(const std::string& db, const std::string& sql);
// True when `sqlpost status DB --json` shows nothing unsent, unconfirmed or unapplied.
bool site_quiet(const std::string& db);

Database open_db(const std::string& path);
void exec(Database& db, const std::string& sql);
std::int64_t query_int(Database& db, const std::string& sql);

// Every row of `table` ordered by its primary key, rendered exactly.
std::vector<Row> table_rows(Database& db, const std::string& table);
// Every sqlpost_* row and the catalog: used to prove "database unchanged".
std::string dump_database(Database& db);

// Empty when equal; otherwise a description of the first difference.
std::string compare_tables(Database& a, Database& b, const std::string& table);

}  // namespace sqlpost::test
