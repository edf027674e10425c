// Epochs: while another process writes multi-row transactions and the agent cuts
// epochs, no transaction is split across epochs and no row is missed or read
// twice. The writer and the agent hand over through pipes, so every run makes
// exactly the same cuts whatever the machine's speed: some while the writer is in
// the middle of a transaction (the cut waits for its commit), some between two.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <map>
#include <set>

#include "replication/changelog.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

constexpr int kRowsPerTransaction = 7;
constexpr int kTransactions = 40;

// One direction of a pipe between the two processes; one byte is one signal.
class Channel {
 public:
  Channel() { REQUIRE(pipe(fds_.data()) == 0); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  Channel(Channel&&) = delete;
  Channel& operator=(Channel&&) = delete;
  ~Channel() {
    close_end(0);
    close_end(1);
  }
  // After fork each process keeps only its own end, so a peer that exits (or
  // fails a check) ends the other side's wait instead of blocking it forever.
  void keep_reading_end() { close_end(1); }
  void keep_writing_end() { close_end(0); }
  [[nodiscard]] bool signal(char what) const { return write(fds_[1], &what, 1) == 1; }
  // The next signal, or 0 when the other side has gone.
  [[nodiscard]] char wait() const {
    char what = 0;
    return read(fds_[0], &what, 1) == 1 ? what : '\0';
  }

 private:
  void close_end(int end) {
    if (fds_.at(end) >= 0) {
      close(fds_.at(end));
      fds_.at(end) = -1;
    }
  }
  std::array<int, 2> fds_{-1, -1};
};

std::string insert_rows(int txn, int from, int to) {
  std::string sql;
  for (int i = from; i < to; ++i) {
    sql += "INSERT INTO t(txn, i) VALUES (" + std::to_string(txn) + ", " + std::to_string(i) + ");";
  }
  return sql;
}

// Child process body. Odd transactions: half the rows, then "inside" to the agent,
// which answers "cutting" and starts its cut while the transaction is still open;
// the writer then finishes and commits. Even transactions: committed whole, and
// the cut comes after. Every commit is followed by "committed".
int write_transactions(const std::string& path, const Channel& to_agent, const Channel& to_writer) {
  auto opened = Database::open(path, Database::Mode::kReadWrite);
  if (!opened.ok()) {
    return 2;
  }
  Database db = std::move(opened).value();
  constexpr int kHalf = kRowsPerTransaction / 2;
  for (int txn = 1; txn <= kTransactions; ++txn) {
    const bool cut_inside = txn % 2 == 1;
    if (!db.exec("BEGIN;" + insert_rows(txn, 0, kHalf)).ok()) {
      return 3;
    }
    if (cut_inside && (!to_agent.signal('i') || to_writer.wait() != 'c')) {
      return 4;
    }
    const std::string rest =
        insert_rows(txn, kHalf, kRowsPerTransaction) + "UPDATE counter SET n = n + 1; COMMIT;";
    if (!db.exec(rest).ok()) {
      return 5;
    }
    if (!to_agent.signal('d') || to_writer.wait() != 'n') {
      return 6;
    }
  }
  return 0;
}

void make_site(const std::string& path, const std::string& journal_mode) {
  Database db = open_db(path);
  exec(db, "PRAGMA journal_mode = " + journal_mode);
  exec(db,
       "CREATE TABLE t(id INTEGER PRIMARY KEY, txn INTEGER, i INTEGER);"
       "CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO counter "
       "VALUES (1, 0);");
  REQUIRE(create_site_tables(db).ok());
  REQUIRE(init_site(db, LocalSite{"hq", "hq@x", Role::kConsolidated, ""}).ok());
  REQUIRE(publish(db, Article{"p", "t", {}, "", "", "incoming"}).ok());
  REQUIRE(publish(db, Article{"p", "counter", {}, "", "", "incoming"}).ok());
}

// What one cut's range held: transaction number -> rows of it.
using RangeRows = std::map<std::int64_t, int>;

}  // namespace

TEST_CASE("epochs hold whole transactions, also when cut while a transaction is open") {
  TempDir dir;
  const std::string path = dir.path("site.db");
  std::string journal_mode = "DELETE";
  SUBCASE("rollback journal") { journal_mode = "DELETE"; }
  SUBCASE("WAL") { journal_mode = "WAL"; }
  make_site(path, journal_mode);

  Channel to_agent;
  Channel to_writer;
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    to_agent.keep_writing_end();
    to_writer.keep_reading_end();
    _exit(write_transactions(path, to_agent, to_writer));
  }
  to_agent.keep_reading_end();
  to_writer.keep_writing_end();

  Database agent = open_db(path);
  std::set<std::int64_t> seen_ids;
  std::int64_t after = 0;
  auto cut_and_read = [&]() -> RangeRows {
    auto cut = cut_epoch(agent);
    REQUIRE_MESSAGE(cut.ok(), (cut.ok() ? "" : cut.error().message));
    RangeRows rows;
    auto read = read_changes(agent, after, cut.value(), {"t"}, [&](const Change& c) -> Result<> {
      CHECK(seen_ids.insert(std::get<std::int64_t>(c.new_values[0].storage())).second);
      rows[std::get<std::int64_t>(c.new_values[1].storage())]++;
      CHECK(c.epoch > after);
      CHECK(c.epoch <= cut.value());
      return success();
    });
    REQUIRE_MESSAGE(read.ok(), (read.ok() ? "" : read.error().message));
    after = cut.value();
    return rows;
  };

  int cuts_inside = 0;
  for (int txn = 1; txn <= kTransactions; ++txn) {
    CAPTURE(txn);
    char signal = to_agent.wait();
    if (signal == 'i') {
      // The writer holds the write lock with half its rows written: the cut waits
      // for the commit and must then hold the whole transaction.
      REQUIRE(to_writer.signal('c'));
      const RangeRows rows = cut_and_read();
      CHECK(rows == RangeRows{{txn, kRowsPerTransaction}});
      ++cuts_inside;
      signal = to_agent.wait();
      REQUIRE(signal == 'd');
    } else {
      REQUIRE(signal == 'd');
      const RangeRows rows = cut_and_read();
      CHECK(rows == RangeRows{{txn, kRowsPerTransaction}});
    }
    REQUIRE(to_writer.signal('n'));
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK(cut_and_read().empty());
  CHECK(cuts_inside == kTransactions / 2);
  CHECK(query_int(agent, "SELECT count(*) FROM t") == kTransactions * kRowsPerTransaction);
  CHECK(static_cast<std::int64_t>(seen_ids.size()) == kTransactions * kRowsPerTransaction);
  CHECK(query_int(agent, "SELECT n FROM counter") == kTransactions);
}

TEST_CASE("a cut gives up with Errc::kBusy once the lock wait is over, and keeps no lock") {
  TempDir dir;
  const std::string path = dir.path("site.db");
  make_site(path, "WAL");
  Database application = open_db(path);
  exec(application, "BEGIN IMMEDIATE; INSERT INTO t(txn, i) VALUES (1, 0);");
  Database agent = open_db(path);
  agent.set_lock_wait(std::chrono::milliseconds(50));
  auto cut = cut_epoch(agent);
  REQUIRE_FALSE(cut.ok());
  CHECK(cut.error().code == Errc::kBusy);
  exec(application, "COMMIT");
  auto retried = cut_epoch(agent);
  REQUIRE(retried.ok());
  std::int64_t rows = 0;
  REQUIRE(read_changes(agent, 0, retried.value(), {"t"}, [&](const Change&) -> Result<> {
            ++rows;
            return success();
          }).ok());
  CHECK(rows == 1);
}
