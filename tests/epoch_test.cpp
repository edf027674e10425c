// Epochs: while another process writes multi-row transactions continuously and
// the agent cuts epochs, no transaction is split across epochs and no row is
// missed or read twice.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "replication/changelog.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

constexpr int kRowsPerTransaction = 7;

// Child process body: multi-row transactions until the deadline. Returns the
// number of committed transactions as exit status is too small; writes it to
// the table `done` instead.
int write_transactions(const std::string& path, std::chrono::milliseconds run_for) {
  auto opened = Database::open(path, Database::Mode::kReadWrite);
  if (!opened.ok()) {
    return 2;
  }
  Database db = std::move(opened).value();
  const auto deadline = std::chrono::steady_clock::now() + run_for;
  std::int64_t txn = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ++txn;
    std::string sql = "BEGIN;";
    for (int i = 0; i < kRowsPerTransaction; ++i) {
      sql +=
          "INSERT INTO t(txn, i) VALUES (" + std::to_string(txn) + ", " + std::to_string(i) + ");";
    }
    sql += "UPDATE counter SET n = n + 1; COMMIT;";
    if (!db.exec(sql).ok()) {
      (void)db.exec("ROLLBACK");
      return 3;
    }
    // An application pauses between transactions; without a pause SQLite's
    // busy handler (which sleeps) would never win the lock against this loop.
    std::this_thread::sleep_for(std::chrono::microseconds(300));
  }
  return 0;
}

}  // namespace

TEST_CASE("epochs hold whole transactions while another process writes continuously") {
  TempDir dir;
  const std::string path = dir.path("site.db");
  std::string journal_mode = "DELETE";
  SUBCASE("rollback journal") { journal_mode = "DELETE"; }
  SUBCASE("WAL") { journal_mode = "WAL"; }
  {
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
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    _exit(write_transactions(path, std::chrono::milliseconds(1500)));
  }

  Database agent = open_db(path);
  std::map<std::int64_t, std::set<std::int64_t>> epochs_of_txn;  // txn -> cut ranges seen in
  std::map<std::int64_t, int> rows_of_txn;
  std::set<std::int64_t> seen_ids;
  std::int64_t after = 0;
  int cuts = 0;
  auto read_range = [&](std::int64_t upto) {
    auto r = read_changes(agent, after, upto, {"t"}, [&](const Change& c) -> Result<> {
      const auto id = std::get<std::int64_t>(c.new_values[0].storage());
      const auto txn = std::get<std::int64_t>(c.new_values[1].storage());
      CHECK(seen_ids.insert(id).second);
      epochs_of_txn[txn].insert(upto);
      rows_of_txn[txn]++;
      CHECK(c.epoch > after);
      CHECK(c.epoch <= upto);
      return success();
    });
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    after = upto;
  };
  int status = 0;
  while (waitpid(child, &status, WNOHANG) == 0) {
    auto cut = cut_epoch(agent);
    REQUIRE_MESSAGE(cut.ok(), (cut.ok() ? "" : cut.error().message));
    ++cuts;
    read_range(cut.value());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  read_range(cut_epoch(agent).value());

  const std::int64_t rows = query_int(agent, "SELECT count(*) FROM t");
  const std::int64_t transactions = query_int(agent, "SELECT n FROM counter");
  MESSAGE("cuts: " << cuts << ", transactions: " << transactions << ", rows: " << rows);
  CHECK(cuts >= 5);
  CHECK(transactions > 20);
  CHECK(static_cast<std::int64_t>(seen_ids.size()) == rows);
  CHECK(static_cast<std::int64_t>(rows_of_txn.size()) == transactions);
  std::size_t ranges_with_data = 0;
  std::set<std::int64_t> ranges;
  for (const auto& [txn, in_ranges] : epochs_of_txn) {
    CHECK_MESSAGE(in_ranges.size() == 1, "transaction " << txn << " split across epochs");
    CHECK(rows_of_txn[txn] == kRowsPerTransaction);
    ranges.insert(*in_ranges.begin());
  }
  ranges_with_data = ranges.size();
  CHECK(ranges_with_data >= 3);  // the writer really was cut several times
}
