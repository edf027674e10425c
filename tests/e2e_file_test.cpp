// End to end through the sqlpost program and the file link: a hub and two
// remotes written by the sqlite3 shell, agents run in rounds, databases
// compared row by row.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/lock.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

std::string env_bin() {
  const char* bin = std::getenv("SQLPOST_BIN");  // NOLINT(concurrency-mt-unsafe): tests
  return bin != nullptr ? bin : "sqlpost";
}

struct Deployment {
  TempDir dir;
  std::string hub = dir.path("hq.db");
  std::string r1 = dir.path("r1.db");
  std::string r2 = dir.path("r2.db");
  std::string mail = dir.path("mail");

  Deployment() {
    sqlite_shell(hub,
                 "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT, "
                 "balance REAL, photo BLOB);"
                 "CREATE TABLE line(order_id INTEGER, n INTEGER, qty INTEGER, note, PRIMARY KEY "
                 "(order_id, n)) WITHOUT ROWID;"
                 "INSERT INTO customer VALUES (1, 'Ada', 'east', 10.5, x'00ff'), (2, 'Bob', NULL, "
                 "NULL, NULL);");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    sqlpost_ok("config " + q(hub) + " link=file file.dir=" + q(mail) + " max_message_bytes=8192");
    sqlpost_ok("publish " + q(hub) + " sales customer");
    sqlpost_ok("publish " + q(hub) + " sales line");
    for (const char* r : {"r1", "r2"}) {
      sqlpost_ok("site add " + q(hub) + " " + r + " --address " + r + "@" + r + ".test");
      sqlpost_ok("subscribe " + q(hub) + " " + r + " sales");
    }
    sqlpost_ok("extract " + q(hub) + " r1 --output " + q(r1));
    sqlpost_ok("extract " + q(hub) + " r2 --output " + q(r2));
  }

  void rounds(int n) {
    for (int i = 0; i < n; ++i) {
      for (const auto& db : {hub, r1, r2}) {
        const auto r = run_sqlpost("run " + q(db) + " --once");
        CHECK_MESSAGE(r.exit_code == 0, r.output);
      }
    }
  }

  void run_until_quiet() {
    for (int i = 0; i < 10; ++i) {
      rounds(1);
      if (site_quiet(hub) && site_quiet(r1) && site_quiet(r2)) {
        return;
      }
    }
    FAIL("the sites did not become quiet in 10 rounds");
  }

  void expect_converged() {
    Database h = open_db(hub);
    for (const auto& path : {r1, r2}) {
      Database r = open_db(path);
      for (const char* table : {"customer", "line"}) {
        const std::string diff = compare_tables(h, r, table);
        CHECK_MESSAGE(diff.empty(), path << ": " << diff);
      }
    }
    for (const auto& path : {hub, r1, r2}) {
      const auto ok = run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'");
      CHECK(ok.output == "ok\n");
    }
  }
};

}  // namespace

TEST_SUITE_BEGIN("e2e-file");

TEST_CASE("hub and two remotes replicate both ways over the file link") {
  Deployment d;
  struct stat st {};
  REQUIRE(stat(d.r1.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  sqlite_shell(d.hub,
               "BEGIN; INSERT INTO customer VALUES (3, 'Cy', 'west', -0.0, zeroblob(0));"
               "INSERT INTO line VALUES (3, 1, 9223372036854775807, 'max'); COMMIT;"
               "UPDATE customer SET balance = 11.25 WHERE id = 1;");
  sqlite_shell(
      d.r1,
      "BEGIN; INSERT INTO customer VALUES (100, 'From r1', 'north', 1e-300, randomblob(3000));"
      "INSERT INTO line VALUES (100, 1, -9223372036854775808, NULL);"
      "INSERT INTO line VALUES (100, 2, 2, x'0001'); COMMIT;"
      "DELETE FROM customer WHERE id = 2;");
  sqlite_shell(
      d.r2,
      "INSERT INTO customer VALUES (200, 'From r2 \xc3\xa9', NULL, 1e300, randomblob(20000));"
      "UPDATE customer SET region = 'south' WHERE id = 3;");
  d.run_until_quiet();
  d.expect_converged();

  Database h = open_db(d.hub);
  CHECK(query_int(h, "SELECT count(*) FROM customer") == 4);  // 1, 3, 100, 200
  CHECK(query_int(h, "SELECT count(*) FROM line") == 3);

  // More rounds of work: deletes and updates of rows that came from elsewhere.
  sqlite_shell(d.r2,
               "DELETE FROM line WHERE order_id = 100 AND n = 2; UPDATE customer SET name = "
               "'renamed at r2' WHERE id = 100;");
  sqlite_shell(d.r1, "UPDATE line SET qty = qty + 1 WHERE order_id = 3;");
  d.run_until_quiet();
  d.expect_converged();

  const auto status = run_sqlpost("status " + q(d.hub));
  CHECK(status.output.find("r1 <r1@r1.test> child, 0 change(s) not yet sent") != std::string::npos);
}

TEST_CASE("extract refuses to overwrite; run without parameters says what to set") {
  Deployment d;
  const auto again = run_sqlpost("extract " + q(d.hub) + " r1 --output " + q(d.r1));
  CHECK(again.exit_code != 0);
  CHECK(again.output.find("never overwrites") != std::string::npos);

  const std::string lonely = d.dir.path("lonely.db");
  sqlpost_ok("init " + q(lonely) + " --site solo --address solo@x.test");
  const auto run = run_sqlpost("run " + q(lonely) + " --once");
  CHECK(run.exit_code == 3);
  CHECK(run.output.find("sqlpost config") != std::string::npos);
  CHECK(run.output.find("link") != std::string::npos);

  const auto bad = run_sqlpost("config " + q(lonely) + " link=pigeon");
  CHECK(bad.exit_code == 2);
  const auto unknown = run_sqlpost("config " + q(lonely) + " colour=blue");
  CHECK(unknown.exit_code == 2);
}

TEST_CASE("a second agent on the same database exits at once with its own code") {
  Deployment d;
  auto lock = AgentLock::acquire(d.hub);
  REQUIRE(lock.ok());
  const auto second = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(second.exit_code == 6);
  CHECK(second.output.find("another sqlpost agent") != std::string::npos);
}

TEST_CASE("foreign files in a mailbox folder are left alone across runs") {
  Deployment d;
  d.rounds(1);
  const std::string folder = d.mail + "/hq@hq.test/new";
  sqlite_shell(d.hub, "SELECT 1");  // the folder exists after the first round
  const std::string foreign = folder + "/0000.foreign";
  REQUIRE(run_command("printf 'From: a@b\\r\\nSubject: hi\\r\\n\\r\\nhello\\r\\n' > " + q(foreign))
              .exit_code == 0);
  d.rounds(2);
  CHECK(run_command("test -f " + q(foreign)).exit_code == 0);
}

TEST_CASE("a conflict is listed by sqlpost conflicts and counted in status") {
  Deployment d;
  d.run_until_quiet();
  sqlite_shell(d.hub, "UPDATE customer SET name = 'hub says' WHERE id = 1;");
  sqlite_shell(d.r1, "UPDATE customer SET name = 'r1 says' WHERE id = 1;");
  d.run_until_quiet();
  d.expect_converged();
  const auto listed = run_sqlpost("conflicts " + q(d.hub) + " --json");
  REQUIRE(listed.exit_code == 0);
  const auto conflicts = nlohmann::json::parse(listed.output);
  REQUIRE(conflicts.size() == 1);
  CHECK(conflicts[0]["kind"] == "update");
  CHECK(conflicts[0]["column"] == "name");
  CHECK(conflicts[0]["local"] == "hub says");
  CHECK(conflicts[0]["incoming"] == "r1 says");
  CHECK(conflicts[0]["outcome"] == "incoming");
  const auto text = run_sqlpost("conflicts " + q(d.hub));
  CHECK(text.output.find("customer (1) update name") != std::string::npos);
  const auto status = run_sqlpost("status " + q(d.hub) + " --json");
  CHECK(nlohmann::json::parse(status.output)["conflicts"] == 1);
}

// hq -> mid -> leaf, one table, over the file link.
struct Hierarchy {
  TempDir dir;
  std::string hq = dir.path("hq.db");
  std::string mid = dir.path("mid.db");
  std::string leaf = dir.path("leaf.db");

  Hierarchy() {
    sqlite_shell(hq,
                 "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');");
    sqlpost_ok("init " + q(hq) + " --site hq --address hq@x.test");
    sqlpost_ok("config " + q(hq) + " link=file file.dir=" + q(dir.path("mail")));
    sqlpost_ok("publish " + q(hq) + " p t");
    sqlpost_ok("site add " + q(hq) + " mid --address mid@x.test");
    sqlpost_ok("subscribe " + q(hq) + " mid p");
    sqlpost_ok("extract " + q(hq) + " mid --output " + q(mid));
    sqlpost_ok("site add " + q(mid) + " leaf --address leaf@x.test");  // a remote's own remote
    sqlpost_ok("subscribe " + q(mid) + " leaf p");
    sqlpost_ok("extract " + q(mid) + " leaf --output " + q(leaf));
  }

  // Runs every agent `n` times (leaf, mid, hq); returns the last exit codes.
  std::string rounds(int n) {
    std::string codes;
    for (int i = 0; i < n; ++i) {
      codes.clear();
      for (const auto& db : {leaf, mid, hq}) {
        codes += std::to_string(run_sqlpost("run " + q(db) + " --once").exit_code);
      }
    }
    return codes;
  }

  void expect_same() {
    Database h = open_db(hq);
    for (const auto& path : {mid, leaf}) {
      Database other = open_db(path);
      const std::string diff = compare_tables(h, other, "t");
      CHECK_MESSAGE(diff.empty(), path << ": " << diff);
    }
  }
};

TEST_CASE("three levels: changes flow hub -> mid -> leaf and back; passthrough ADD COLUMN") {
  Hierarchy h;
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (2, 'from leaf');");
  sqlite_shell(h.hq, "INSERT INTO t VALUES (3, 'from hq');");
  CHECK(h.rounds(3) == "000");
  h.expect_same();

  sqlpost_ok("passthrough " + q(h.hq) + " --all " +
             q("ALTER TABLE t ADD COLUMN extra TEXT DEFAULT 'none'"));
  sqlite_shell(h.hq, "INSERT INTO t VALUES (4, 'uses it', 'x4');");  // right behind the ALTER
  CHECK(h.rounds(3) == "000");
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (5, 'leaf uses it', 'x5');");
  CHECK(h.rounds(3) == "000");
  h.expect_same();
  Database leaf = open_db(h.leaf);
  CHECK(query_int(leaf, "SELECT count(*) FROM t WHERE extra = 'x4'") == 1);
  Database hq = open_db(h.hq);
  CHECK(query_int(hq, "SELECT count(*) FROM t WHERE extra = 'x5'") == 1);
}

TEST_CASE("three levels: the middle site restored from a backup recovers with both partners") {
  Hierarchy h;
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (2, 'leaf, before the backup');");
  CHECK(h.rounds(3) == "000");
  const std::string backup = h.dir.path("mid-backup.db");
  REQUIRE(run_command("cp " + q(h.mid) + " " + q(backup)).exit_code == 0);
  sqlite_shell(h.hq, "INSERT INTO t VALUES (10, 'hq, after the backup');");
  sqlite_shell(h.mid, "INSERT INTO t VALUES (11, 'mid, after the backup');");
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (12, 'leaf, after the backup');");
  CHECK(h.rounds(3) == "000");
  h.expect_same();
  REQUIRE(run_command("cp " + q(backup) + " " + q(h.mid)).exit_code == 0);  // the restore
  sqlite_shell(h.mid, "INSERT INTO t VALUES (13, 'mid, after the restore');");
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (14, 'leaf, after the restore');");
  CHECK(h.rounds(6) == "000");
  h.expect_same();
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CAPTURE(path);
    Database db = open_db(path);
    CHECK(query_int(db, "SELECT count(*) FROM t WHERE id IN (1, 2, 10, 11, 12, 13, 14)") == 7);
    CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
  }
  // Kept in a variable: a range-for over a member of a temporary would read freed memory.
  const auto mid_status =
      nlohmann::json::parse(run_sqlpost("status " + q(h.mid) + " --json").output);
  for (const auto& p : mid_status["partners"]) {
    CAPTURE(p["name"]);
    CHECK(p["delivery"]["recovery"]["state"] == "done");
  }
}

TEST_CASE("data for a column a site does not have stops that stream until it is fixed") {
  Hierarchy h;
  sqlpost_ok("passthrough " + q(h.hq) + " --site mid " + q("ALTER TABLE t ADD COLUMN extra TEXT"));
  sqlite_shell(h.hq, "UPDATE t SET extra = 'new' WHERE id = 1;");
  h.rounds(3);  // mid has the column; the leaf does not
  const auto stopped = run_sqlpost("run " + q(h.leaf) + " --once");
  CHECK(stopped.exit_code != 0);
  CHECK(stopped.output.find("has no column 'extra'") != std::string::npos);
  CHECK(run_sqlpost("status " + q(h.leaf)).output.find("STOPPED") != std::string::npos);
  sqlite_shell(h.leaf, "ALTER TABLE t ADD COLUMN extra TEXT;");  // the fix, by hand
  CHECK(h.rounds(3) == "000");
  h.expect_same();
}

TEST_CASE("the hub's status shows every site below it, and a leaf's stopped stream") {
  Hierarchy h;
  sqlpost_ok("passthrough " + q(h.hq) + " --site mid " + q("ALTER TABLE t ADD COLUMN extra TEXT"));
  sqlite_shell(h.hq, "UPDATE t SET extra = 'new' WHERE id = 1;");
  h.rounds(3);  // the leaf's stream from mid stops: the leaf has no column 'extra'
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (7, 'written at the leaf');");
  h.rounds(2);  // the leaf's row carries its health to mid, mid's message carries both up

  const auto status = nlohmann::json::parse(run_sqlpost("status " + q(h.hq) + " --json").output);
  std::map<std::string, nlohmann::json> below;
  for (const auto& s : status["hierarchy"]) {
    below[s["site"].get<std::string>()] = s;
  }
  REQUIRE(below.count("mid") == 1);
  REQUIRE(below.count("leaf") == 1);
  CHECK(below["mid"]["via"] == "mid");
  CHECK(below["leaf"]["via"] == "mid");
  CHECK(below["mid"]["halted"].empty());
  REQUIRE(below["leaf"]["halted"].size() == 1);
  CHECK(below["leaf"]["halted"][0]["partner"] == "mid");
  CHECK(below["leaf"]["halted"][0]["why"].get<std::string>().find("extra") != std::string::npos);
  CHECK(below["leaf"]["reported_at"].get<std::int64_t>() > 0);
  bool alerted = false;
  for (const auto& a : status["alerts"]) {
    alerted = alerted || (a["kind"] == "stopped_below" && a["partner"] == "leaf");
  }
  CHECK_MESSAGE(alerted, status["alerts"].dump());
  CHECK(run_sqlpost("run " + q(h.hq) + " --once").exit_code == 10);  // an alert in force
  const auto text = run_sqlpost("status " + q(h.hq)).output;
  CHECK(text.find("leaf (via mid)") != std::string::npos);
  CHECK(text.find("STOPPED stream from mid") != std::string::npos);

  sqlite_shell(h.leaf, "ALTER TABLE t ADD COLUMN extra TEXT;");  // the fix, by hand
  sqlite_shell(h.leaf, "INSERT INTO t VALUES (8, 'after the fix', NULL);");
  CHECK(h.rounds(3) == "000");
  const auto fixed = nlohmann::json::parse(run_sqlpost("status " + q(h.hq) + " --json").output);
  for (const auto& s : fixed["hierarchy"]) {
    CHECK_MESSAGE(s["halted"].empty(), s.dump());
  }
  CHECK(fixed["alerts"].empty());
  h.expect_same();
}

TEST_CASE("a foreign-key clash (child row for a parent deleted elsewhere) converges") {
  TempDir dir;
  const std::string hub = dir.path("hq.db");
  const std::string r1 = dir.path("r1.db");
  const std::string r2 = dir.path("r2.db");
  sqlite_shell(hub,
               "CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);"
               "CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES "
               "parent(id), note TEXT);"
               "INSERT INTO parent VALUES (1, 'one'), (2, 'two');");
  sqlpost_ok("init " + q(hub) + " --site hq --address hq@x.test");
  sqlpost_ok("config " + q(hub) + " link=file file.dir=" + q(dir.path("mail")));
  sqlpost_ok("publish " + q(hub) + " p parent");
  sqlpost_ok("publish " + q(hub) + " p child");
  for (const auto& [name, path] : {std::pair{"r1", r1}, std::pair{"r2", r2}}) {
    sqlpost_ok("site add " + q(hub) + " " + name + " --address " + name + "@x.test");
    sqlpost_ok("subscribe " + q(hub) + " " + name + " p");
    sqlpost_ok("extract " + q(hub) + " " + name + " --output " + q(path));
  }
  // At the same time: the hub deletes parent 1, r1 adds a child of parent 1, and
  // r2 deletes parent 2 while the hub adds a child of parent 2.
  sqlite_shell(hub, "DELETE FROM parent WHERE id = 1; INSERT INTO child VALUES (20, 2, 'hq');");
  sqlite_shell(r1, "INSERT INTO child VALUES (10, 1, 'r1');");
  sqlite_shell(r2, "DELETE FROM parent WHERE id = 2;");
  for (int round = 0; round < 4; ++round) {
    for (const auto& db : {hub, r1, r2}) {
      run_sqlpost("run " + q(db) + " --once");
    }
  }
  Database h = open_db(hub);
  for (const auto& path : {r1, r2}) {
    Database other = open_db(path);
    for (const char* table : {"parent", "child"}) {
      const std::string diff = compare_tables(h, other, table);
      CHECK_MESSAGE(diff.empty(), path << " " << table << ": " << diff);
    }
    CHECK(query_int(other,
                    "SELECT count(*) FROM pragma_integrity_check WHERE "
                    "integrity_check <> 'ok'") == 0);
  }
  // The orphans are everywhere (nothing is lost), and the hub recorded the clash.
  CHECK(query_int(h, "SELECT count(*) FROM child") == 2);
  CHECK(query_int(h, "SELECT count(*) FROM sqlpost_conflicts WHERE kind = 'foreign_key'") >= 1);
}

// ---- live publication changes (issue 10, case 3)

namespace {

std::int64_t capture_triggers(const std::string& path, const std::string& table) {
  Database db = open_db(path);
  return query_int(db,
                   "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name "
                   "= '" +
                       table + "' AND name LIKE 'sqlpost_capture_%'");
}

bool status_shows_no_problem(const std::string& path) {
  const auto status = run_sqlpost("status " + q(path));
  return status.exit_code == 0 && status.output.find("STOPPED") == std::string::npos &&
         site_quiet(path);
}

void expect_same_everywhere(const Hierarchy& h, const std::vector<std::string>& tables) {
  Database hub = open_db(h.hq);
  for (const auto& path : {h.mid, h.leaf}) {
    Database other = open_db(path);
    for (const auto& table : tables) {
      const std::string diff = compare_tables(hub, other, table);
      CHECK_MESSAGE(diff.empty(), path << " " << table << ": " << diff);
    }
  }
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
  }
}

}  // namespace

TEST_CASE("publish adds a table to a live publication: hub -> mid -> leaf replicate it both ways") {
  Hierarchy h;
  CHECK(h.rounds(2) == "000");
  sqlite_shell(h.hq,
               "CREATE TABLE c(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n REAL, b BLOB);"
               "CREATE INDEX c_by_name ON c(name);"
               "INSERT INTO c VALUES (1, 'one', 1.5, x'00ff'), (2, 'two', NULL, NULL);");
  sqlpost_ok("publish " + q(h.hq) + " p c");  // p is live: mid and leaf subscribe to it
  sqlite_shell(h.hq, "INSERT INTO c VALUES (3, 'right behind', -0.0, zeroblob(3));");
  CHECK(h.rounds(3) == "000");
  for (const auto& path : {h.mid, h.leaf}) {
    CHECK(capture_triggers(path, "c") == 3);
    Database db = open_db(path);
    CHECK(query_int(db,
                    "SELECT count(*) FROM sqlpost_articles WHERE publication = 'p' AND "
                    "table_name = 'c'") == 1);
    CHECK(query_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'c_by_name'") == 1);
  }
  expect_same_everywhere(h, {"t", "c"});

  // Both directions afterwards: the leaf's rows reach the hub, the hub's the leaf.
  sqlite_shell(h.leaf,
               "INSERT INTO c VALUES (100, 'from leaf', 2, NULL); "
               "UPDATE c SET name = 'one at leaf' WHERE id = 1;");
  sqlite_shell(h.mid, "INSERT INTO c VALUES (50, 'from mid', 3, NULL);");
  sqlite_shell(h.hq, "INSERT INTO c VALUES (4, 'from hq', 4, NULL); DELETE FROM c WHERE id = 2;");
  CHECK(h.rounds(3) == "000");
  expect_same_everywhere(h, {"t", "c"});
  Database hub = open_db(h.hq);
  CHECK(query_int(hub, "SELECT count(*) FROM c") == 5);  // 1, 3, 4, 50, 100
  CHECK(query_int(hub, "SELECT count(*) FROM c WHERE id = 100 AND name = 'from leaf'") == 1);
  CHECK(query_int(hub, "SELECT count(*) FROM c WHERE id = 1 AND name = 'one at leaf'") == 1);
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CHECK_MESSAGE(status_shows_no_problem(path), path);
  }
}

namespace {

// The rows of c in the article's subset (columns id, v; v <> 'hidden'), rendered.
std::string subset_of_c(const std::string& path, bool filter) {
  Database db = open_db(path);
  auto st = db.prepare(std::string("SELECT ifnull(group_concat(id || ':' || quote(v), ','), '') "
                                   "FROM (SELECT id, v FROM c ") +
                       (filter ? "WHERE v <> 'hidden' " : "") + "ORDER BY id)")
                .value();
  REQUIRE(st.step().value());
  return st.column_text(0);
}

}  // namespace

TEST_CASE(
    "a table joins a live publication with a row and column subset: each site gets its part") {
  Hierarchy h;
  sqlite_shell(h.hq,
               "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT, secret TEXT);"
               "INSERT INTO c VALUES (1, 'shown', 's1'), (2, 'hidden', 's2'), "
               "(3, 'also shown', 's3');");
  sqlpost_ok("publish " + q(h.hq) + " p c --columns id,v --where " + q("v <> 'hidden'"));
  CHECK(h.rounds(3) == "000");
  const std::string expected = "1:'shown',3:'also shown'";
  CHECK(subset_of_c(h.hq, true) == expected);
  for (const auto& path : {h.mid, h.leaf}) {
    CHECK(subset_of_c(path, false) == expected);
    Database db = open_db(path);
    CHECK(query_int(db, "SELECT count(*) FROM pragma_table_info('c') WHERE name = 'secret'") == 0);
    CHECK(capture_triggers(path, "c") == 3);
  }
  // A row moving into the subset at the hub, a new row at the leaf.
  sqlite_shell(h.hq, "UPDATE c SET v = 'now shown' WHERE id = 2;");
  sqlite_shell(h.leaf, "INSERT INTO c VALUES (7, 'from leaf');");
  CHECK(h.rounds(3) == "000");
  const std::string after = "1:'shown',2:'now shown',3:'also shown',7:'from leaf'";
  CHECK(subset_of_c(h.hq, true) == after);
  for (const auto& path : {h.mid, h.leaf}) {
    CHECK(subset_of_c(path, false) == after);
  }
  expect_same_everywhere(h, {"t"});
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CHECK_MESSAGE(status_shows_no_problem(path), path);
  }
}

TEST_CASE("an article widened by a column on a live publication: subscribers add it, both ways") {
  Hierarchy h;
  sqlite_shell(h.hq,
               "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT, extra TEXT DEFAULT 'none', "
               "n INTEGER); INSERT INTO c VALUES (1, 'a', 'x1', 10), (2, 'b', 'x2', 20), "
               "(3, 'c', NULL, 30);");
  sqlpost_ok("publish " + q(h.hq) + " p c --columns id,v");
  CHECK(h.rounds(3) == "000");
  auto column_count = [](const std::string& path, const std::string& column) {
    Database db = open_db(path);
    return query_int(db,
                     "SELECT count(*) FROM pragma_table_info('c') WHERE name = '" + column + "'");
  };
  CHECK(column_count(h.leaf, "extra") == 0);
  // A delete right before the widening is not lost; a row right after carries the column.
  sqlite_shell(h.hq, "DELETE FROM c WHERE id = 2;");
  sqlpost_ok("publish " + q(h.hq) + " p c --columns id,v,extra");
  sqlite_shell(h.hq, "INSERT INTO c VALUES (4, 'd', 'x4', 40);");
  CHECK(h.rounds(3) == "000");
  auto image = [](const std::string& path, const std::string& where) {
    Database db = open_db(path);
    auto st = db.prepare(
                    "SELECT ifnull(group_concat(id || ':' || v || ':' || quote(extra), ','), "
                    "'') FROM (SELECT * FROM c " +
                    where + " ORDER BY id)")
                  .value();
    REQUIRE(st.step().value());
    return st.column_text(0);
  };
  CHECK(image(h.hq, "") == "1:a:'x1',3:c:NULL,4:d:'x4'");
  for (const auto& path : {h.mid, h.leaf}) {
    CHECK(column_count(path, "extra") == 1);
    CHECK(column_count(path, "n") == 0);
    CHECK(image(path, "") == image(h.hq, ""));
  }
  sqlite_shell(h.leaf, "UPDATE c SET extra = 'from leaf' WHERE id = 1;");
  sqlite_shell(h.hq, "UPDATE c SET extra = 'from hq' WHERE id = 3;");
  CHECK(h.rounds(3) == "000");
  CHECK(image(h.hq, "") == "1:a:'from leaf',3:c:'from hq',4:d:'x4'");
  for (const auto& path : {h.mid, h.leaf}) {
    CHECK(image(path, "") == image(h.hq, ""));
  }
  expect_same_everywhere(h, {"t"});
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CHECK_MESSAGE(status_shows_no_problem(path), path);
  }
}

TEST_CASE("unpublish on a live publication stops capture and routing of the table; data stays") {
  Hierarchy h;
  sqlite_shell(h.hq,
               "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO c VALUES (1, "
               "'a'), (2, 'b');");
  sqlpost_ok("publish " + q(h.hq) + " p c");
  CHECK(h.rounds(3) == "000");
  expect_same_everywhere(h, {"t", "c"});
  REQUIRE(capture_triggers(h.leaf, "c") == 3);

  sqlpost_ok("unpublish " + q(h.hq) + " p c");
  CHECK(h.rounds(3) == "000");
  for (const auto& path : {h.mid, h.leaf}) {
    CHECK(capture_triggers(path, "c") == 0);
    Database db = open_db(path);
    CHECK(query_int(db, "SELECT count(*) FROM sqlpost_articles WHERE table_name = 'c'") == 0);
    CHECK(query_int(db, "SELECT count(*) FROM c") == 2);  // the data stays
  }
  // Neither direction carries c any more, and nothing stops.
  sqlite_shell(h.hq, "INSERT INTO c VALUES (3, 'hub only'); INSERT INTO t VALUES (10, 'x');");
  sqlite_shell(h.leaf, "INSERT INTO c VALUES (4, 'leaf only'); INSERT INTO t VALUES (11, 'y');");
  CHECK(h.rounds(3) == "000");
  Database hub = open_db(h.hq);
  Database leaf = open_db(h.leaf);
  CHECK(query_int(hub, "SELECT count(*) FROM c WHERE id = 4") == 0);
  CHECK(query_int(leaf, "SELECT count(*) FROM c WHERE id = 3") == 0);
  expect_same_everywhere(h, {"t"});
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CHECK_MESSAGE(status_shows_no_problem(path), path);
  }
}

TEST_CASE("a table the mid already holds joins the leaf's publication: the mid sends its rows") {
  Hierarchy h;
  sqlite_shell(h.mid, "INSERT INTO t VALUES (20, 'from mid');");  // the mid has sent data
  sqlite_shell(h.hq,
               "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT);"
               "INSERT INTO c VALUES (1, 'a'), (2, 'b');");
  sqlpost_ok("publish " + q(h.hq) + " q c");
  sqlpost_ok("subscribe " + q(h.hq) + " mid q");  // the mid is live; the leaf is not in q
  CHECK(h.rounds(3) == "000");
  CHECK(capture_triggers(h.mid, "c") == 3);
  {
    Database leaf = open_db(h.leaf);
    CHECK(query_int(leaf, "SELECT count(*) FROM sqlite_master WHERE name = 'c'") == 0);
  }
  sqlite_shell(h.hq, "UPDATE c SET v = 'b2' WHERE id = 2;");
  sqlpost_ok("publish " + q(h.hq) + " p c");  // now in p too, which the leaf has
  sqlite_shell(h.hq, "UPDATE c SET v = 'a2' WHERE id = 1;");
  CHECK(h.rounds(3) == "000");
  CHECK(capture_triggers(h.leaf, "c") == 3);
  expect_same_everywhere(h, {"t", "c"});
  // The mid's copies of its rows for the leaf are not changes the hub has to decide.
  sqlite_shell(h.hq, "UPDATE c SET v = 'b3' WHERE id = 2;");
  CHECK(h.rounds(3) == "000");
  expect_same_everywhere(h, {"t", "c"});
  sqlite_shell(h.leaf, "INSERT INTO c VALUES (9, 'from leaf');");
  sqlite_shell(h.hq, "UPDATE c SET v = 'a3' WHERE id = 1;");
  CHECK(h.rounds(3) == "000");
  expect_same_everywhere(h, {"t", "c"});
  for (const auto& path : {h.hq, h.mid, h.leaf}) {
    CHECK_MESSAGE(status_shows_no_problem(path), path);
  }
}

TEST_CASE("subscribe on a live site sends that site the publication's tables and rows") {
  Deployment d;
  d.run_until_quiet();
  sqlite_shell(d.hub,
               "CREATE TABLE price(id INTEGER PRIMARY KEY, region TEXT, amount INTEGER);"
               "INSERT INTO price VALUES (1, 'east', 10), (2, 'west', 20), (3, 'east', 30);");
  sqlpost_ok("publish " + q(d.hub) + " prices price --subscribe-by region");  // nobody yet
  sqlpost_ok("subscribe " + q(d.hub) + " r1 prices --value east");            // r1 is live
  sqlite_shell(d.hub, "UPDATE price SET amount = 11 WHERE id = 1;");
  d.run_until_quiet();
  Database r1 = open_db(d.r1);
  CHECK(capture_triggers(d.r1, "price") == 3);
  Database hub = open_db(d.hub);
  auto rows_of = [](Database& db, const std::string& where) {
    auto st = db.prepare(
                    "SELECT ifnull(group_concat(id || ':' || region || ':' || amount, ','), "
                    "'') FROM (SELECT * FROM price " +
                    where + " ORDER BY id)")
                  .value();
    REQUIRE(st.step().value());
    return st.column_text(0);
  };
  CHECK(rows_of(r1, "") == "1:east:11,3:east:30");
  CHECK(rows_of(r1, "") == rows_of(hub, "WHERE region = 'east'"));
  Database r2 = open_db(d.r2);
  CHECK(query_int(r2, "SELECT count(*) FROM sqlite_master WHERE name = 'price'") == 0);

  // Both ways afterwards; then unsubscribe stops capture at r1 (its rows stay).
  sqlite_shell(d.r1, "INSERT INTO price VALUES (100, 'east', 1000);");
  sqlite_shell(d.hub, "INSERT INTO price VALUES (4, 'east', 40), (5, 'west', 50);");
  d.run_until_quiet();
  CHECK(rows_of(r1, "") == rows_of(hub, "WHERE region = 'east'"));
  CHECK(rows_of(hub, "WHERE id = 100") == "100:east:1000");
  // A second value: its rows arrive; a delete just before it is not lost.
  sqlite_shell(d.hub, "DELETE FROM price WHERE id = 3;");
  sqlpost_ok("subscribe " + q(d.hub) + " r1 prices --value west");
  d.run_until_quiet();
  CHECK(rows_of(r1, "") == "1:east:11,2:west:20,4:east:40,5:west:50,100:east:1000");
  CHECK(rows_of(r1, "") == rows_of(hub, ""));
  sqlpost_ok("unsubscribe " + q(d.hub) + " r1 prices");
  d.run_until_quiet();
  CHECK(capture_triggers(d.r1, "price") == 0);
  CHECK(query_int(r1, "SELECT count(*) FROM price") == 5);  // the data stays
  d.expect_converged();
  for (const auto& path : {d.hub, d.r1, d.r2}) {
    CHECK_MESSAGE(status_shows_no_problem(path), path);
  }
}

namespace {

// True once `file` holds `text` (polled for up to two minutes).
bool log_shows(const std::string& file, const std::string& text) {
  return run_command("for i in $(seq 1200); do grep -qF -- " + q(text) + " " + q(file) +
                     " 2>/dev/null && exit 0; sleep 0.1; done; exit 1")
             .exit_code == 0;
}

}  // namespace

TEST_CASE("run --every: passes until SIGTERM, holds the lock, logs to a file") {
  Deployment d;
  sqlite_shell(d.r1,
               "INSERT INTO customer VALUES (900, 'while the hub agent runs', NULL, NULL, NULL);");
  const std::string log = d.dir.path("hq.log");
  const std::string pid_file = d.dir.path("hq.pid");
  const auto started = run_command(q(env_bin()) + " run " + q(d.hub) + " --every 1s -v --log " +
                                   q(log) + " >/dev/null 2>&1 & echo $! > " + q(pid_file));
  REQUIRE(started.exit_code == 0);
  // Hand-over through the agent's own log: each step waits for the line that says
  // the agent got there (bounded generously; no verdict depends on speed).
  REQUIRE(log_shows(log, "] received "));  // the first pass ended; the lock is still held
  const auto second = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(second.exit_code == 6);  // the long-running agent holds the lock between passes too
  sqlpost_ok("run " + q(d.r1) + " --once");
  REQUIRE(log_shows(log, "applied message 1 from r1"));  // a later pass took r1's mail
  const auto stopped = run_command("pid=$(cat " + q(pid_file) +
                                   "); kill -TERM $pid; for i in $(seq 1200); do kill -0 $pid "
                                   "2>/dev/null || exit 0; sleep 0.1; done; exit 1");
  CHECK(stopped.exit_code == 0);  // it stopped after the pass under way
  Database h = open_db(d.hub);
  CHECK(query_int(h, "SELECT count(*) FROM customer WHERE id = 900") == 1);
  const auto logged = run_command("cat " + q(log));
  CHECK(logged.output.find("runs every 1s") != std::string::npos);
  CHECK(logged.output.find("stop requested") != std::string::npos);
  CHECK(logged.output.find("[debug] applied message 1 from r1") != std::string::npos);  // -v
  CHECK(logged.output.find("[info] received ") != std::string::npos);  // each pass's summary
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE("an application holding the write lock: run exits 9 after lock_wait, loses nothing") {
  Deployment d;
  sqlpost_ok("config " + q(d.hub) + " lock_wait=1");
  Database application = open_db(d.hub);
  // The application's transaction is open (its row not yet committed) for the whole run.
  exec(application,
       "BEGIN IMMEDIATE; INSERT INTO customer VALUES (950, 'held', NULL, NULL, NULL);");
  const auto blocked = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK_MESSAGE(blocked.exit_code == 9, blocked.output);
  CHECK(blocked.output.find("write lock stayed taken by another connection") != std::string::npos);
  const auto other_agent = run_sqlpost("status " + q(d.hub));  // reads still work
  CHECK(other_agent.exit_code == 0);
  exec(application, "COMMIT");
  d.run_until_quiet();
  d.expect_converged();
  Database r1 = open_db(d.r1);
  CHECK(query_int(r1, "SELECT count(*) FROM customer WHERE id = 950") == 1);
}

// Issue 10, case 1: the hub and a shop each insert sales without an id (the sqlite3
// shell: plain SQLite, no extension), in several rounds while rows of the other
// arrive. With key ranges every sale survives at both sites; without, the
// collision is recorded at the hub with both rows whole.
TEST_CASE("key ranges: the hub and a shop insert without a key, and no sale is lost") {
  const bool ranges = true;
  for (const bool with_ranges : {ranges, !ranges}) {
    CAPTURE(with_ranges);
    TempDir dir;
    const std::string hub = dir.path("hq.db");
    const std::string shop = dir.path("s1.db");
    sqlite_shell(hub,
                 "CREATE TABLE sale(id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER, ts TEXT);"
                 "INSERT INTO sale(v, ts) VALUES (1, 'old');");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    sqlpost_ok("config " + q(hub) + " link=file file.dir=" + q(dir.path("mail")));
    if (with_ranges) {
      sqlpost_ok("config " + q(hub) + " keys=ranges");
    }
    const auto published = run_sqlpost("publish " + q(hub) + " shop sale");
    REQUIRE(published.exit_code == 0);
    CHECK(published.output.find("docs/keys.md") != std::string::npos);
    sqlpost_ok("site add " + q(hub) + " s1 --address s1@s1.test");
    sqlpost_ok("subscribe " + q(hub) + " s1 shop");
    sqlpost_ok("extract " + q(hub) + " s1 --output " + q(shop));
    const auto run = [&](const std::string& db) {
      const auto r = run_sqlpost("run " + q(db) + " --once");
      CHECK_MESSAGE(r.exit_code == 0, r.output);
    };
    const auto insert = [](const std::string& v, const std::string& ts) {
      std::string sql = "INSERT INTO sale(v, ts) VALUES (";
      sql.append(v).append(", '").append(ts).append("');");
      return sql;
    };
    for (int round = 0; round < 3; ++round) {
      const std::string n = std::to_string(round);
      sqlite_shell(hub, insert("10" + n, "hub " + n));
      sqlite_shell(shop,
                   insert("20" + n, "shop " + n).append(" ").append(insert("30" + n, "shop " + n)));
      run(shop);
      run(hub);
    }
    for (int i = 0; i < 6 && !(site_quiet(hub) && site_quiet(shop)); ++i) {
      run(shop);
      run(hub);
    }
    CHECK((site_quiet(hub) && site_quiet(shop)));
    Database h = open_db(hub);
    Database s = open_db(shop);
    CHECK(compare_tables(h, s, "sale").empty());
    for (const auto& path : {hub, shop}) {
      CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
    }
    const auto collisions = query_int(h,
                                      "SELECT count(*) FROM sqlpost_conflicts WHERE kind = "
                                      "'insert_collision' AND local_value LIKE '%''hub %' AND "
                                      "incoming_value LIKE '%''shop %' AND outcome = 'incoming'");
    if (with_ranges) {
      CHECK(query_int(h, "SELECT count(*) FROM sale") == 1 + 3 + 6);  // every sale survives
      CHECK(query_int(h, "SELECT count(DISTINCT id) FROM sale") == 10);
      CHECK(collisions == 0);
    } else {
      CHECK(query_int(h, "SELECT count(*) FROM sale") < 10);  // max(id) + 1 at both sites
      CHECK(collisions > 0);  // each lost hub sale kept whole in local_value
    }
  }
}

TEST_CASE("a shop restored from last night's backup recovers by itself (issue 10, case 2)") {
  Deployment d;
  d.run_until_quiet();
  const std::string backup = d.dir.path("r1-backup.db");
  REQUIRE(run_command("cp " + q(d.r1) + " " + q(backup)).exit_code == 0);
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (300, 'hub, after the backup', NULL, 1, NULL);");
  sqlite_shell(d.r1, "INSERT INTO customer VALUES (301, 'r1, after the backup', NULL, 2, NULL);");
  d.run_until_quiet();
  d.expect_converged();
  REQUIRE(run_command("cp " + q(backup) + " " + q(d.r1)).exit_code == 0);  // the restore
  sqlite_shell(d.r1, "INSERT INTO customer VALUES (302, 'r1, after the restore', NULL, 3, NULL);");
  d.run_until_quiet();
  d.rounds(1);  // the last acknowledgements
  d.expect_converged();
  Database r1 = open_db(d.r1);
  CHECK(query_int(r1, "SELECT count(*) FROM customer WHERE id IN (300, 301, 302)") == 3);
  const auto hub_status = run_sqlpost("status " + q(d.hub));
  CHECK_MESSAGE(hub_status.output.find("RESTORE RECOVERED: site r1 was restored from a backup") !=
                    std::string::npos,
                hub_status.output);
  const auto r1_status = run_sqlpost("status " + q(d.r1) + " --json");
  const auto json = nlohmann::json::parse(r1_status.output);
  CHECK(json["partners"][0]["delivery"]["recovery"]["state"] == "done");
}

TEST_CASE(
    "a shop restored from a backup older than the hub's log: re-extract alert, nothing "
    "applied") {
  Deployment d;
  sqlpost_ok("config " + q(d.hub) + " log_retention=0");
  // The restored shop finds out when it asks for what it misses: at once here.
  sqlpost_ok("config " + q(d.r1) + " gap_patience=0 resend_interval=0");
  d.run_until_quiet();
  const std::string backup = d.dir.path("r1-backup.db");
  REQUIRE(run_command("cp " + q(d.r1) + " " + q(backup)).exit_code == 0);
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (400, 'hub, after the backup', NULL, 1, NULL);");
  sqlite_shell(d.r1, "INSERT INTO customer VALUES (401, 'r1, after the backup', NULL, 2, NULL);");
  d.run_until_quiet();
  d.rounds(2);  // acknowledged everywhere: the hub prunes its log
  REQUIRE(run_command("cp " + q(backup) + " " + q(d.r1)).exit_code == 0);  // the restore
  const std::string before = run_command("sqlite3 " + q(d.r1) +
                                         " 'SELECT * FROM customer ORDER BY id; SELECT * FROM "
                                         "line ORDER BY order_id, n'")
                                 .output;
  sqlite_shell(d.hub,
               "INSERT INTO customer VALUES (402, 'hub, after the restore', NULL, 3, NULL);");
  for (int i = 0; i < 6; ++i) {
    for (const auto& db : {d.hub, d.r1, d.r2}) {
      (void)run_sqlpost("run " + q(db) + " --once");  // exit codes: the alert (10), once 1
    }
  }
  const std::string after = run_command("sqlite3 " + q(d.r1) +
                                        " 'SELECT * FROM customer ORDER BY id; SELECT * FROM "
                                        "line ORDER BY order_id, n'")
                                .output;
  CHECK(after == before);  // nothing from the hub was applied at the restored shop
  const auto has_alert = [](const std::string& db, const std::string& partner) {
    const auto status = nlohmann::json::parse(run_sqlpost("status " + q(db) + " --json").output);
    for (const auto& a : status["alerts"]) {
      if (a["kind"] == "re-extract" && a["partner"] == partner) {
        return true;
      }
    }
    return false;
  };
  CHECK(has_alert(d.hub, "r1"));
  CHECK(has_alert(d.r1, "hq"));
  CHECK_FALSE(has_alert(d.hub, "r2"));
  const auto text = run_sqlpost("status " + q(d.r1));
  CHECK_MESSAGE(text.output.find("RESTORE NEEDS RE-EXTRACTION") != std::string::npos,
                text.output << run_sqlpost("status " + q(d.hub)).output
                            << run_sqlpost("log " + q(d.r1)).output);
  for (const auto& path : {d.hub, d.r1, d.r2}) {
    CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
  }
}

TEST_SUITE_END();

TEST_CASE(
    "site rekey through the program: status follows the rotation, keys never shown; "
    "site key copies a pair key by hand") {
  Deployment d;
  d.run_until_quiet();
  sqlpost_ok("site rekey " + q(d.hub) + " r1");
  const auto again = run_sqlpost("site rekey " + q(d.hub) + " r1");
  CHECK(again.exit_code != 0);
  CHECK(again.output.find("already under way") != std::string::npos);
  CHECK(run_sqlpost("site rekey " + q(d.hub) + " nobody").exit_code != 0);
  const auto under_way = run_sqlpost("status " + q(d.hub));
  CHECK_MESSAGE(under_way.output.find("KEY ROTATION under way") != std::string::npos,
                under_way.output);
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (30, 'during', 'west', 1, NULL)");
  sqlite_shell(d.r1, "INSERT INTO customer VALUES (31, 'during, r1', 'east', 2, NULL)");
  std::string outputs;
  for (int i = 0; i < 4; ++i) {
    for (const auto& db : {d.hub, d.r1, d.r2}) {
      const auto r = run_sqlpost("run " + q(db) + " --once -v");
      CHECK_MESSAGE(r.exit_code == 0, r.output);
      outputs += r.output;
    }
  }
  d.run_until_quiet();
  d.expect_converged();
  const auto hub_json = nlohmann::json::parse(run_sqlpost("status " + q(d.hub) + " --json").output);
  for (const auto& p : hub_json["partners"]) {
    if (p["name"] == "r1") {
      CHECK(p["key_rotation"]["state"] == "done");
    } else {
      CHECK_FALSE(p.contains("key_rotation"));
    }
  }
  const auto done = run_sqlpost("status " + q(d.r1));
  CHECK_MESSAGE(done.output.find("key rotated") != std::string::npos, done.output);
  outputs += done.output + hub_json.dump();
  std::string new_key;
  {
    Database hub = open_db(d.hub);
    auto st = hub.prepare("SELECT lower(hex(key)) FROM sqlpost_sites WHERE name = 'r1'").value();
    REQUIRE(st.step().value());
    new_key = st.column_text(0);
  }
  CHECK(outputs.find(new_key) == std::string::npos);  // keys are never logged
  CHECK(outputs.find("offers the new key") != std::string::npos);

  // By hand: the pair key goes to a private file and is set from it at the partner.
  const std::string file = d.dir.path("r2.key");
  sqlpost_ok("site key " + q(d.hub) + " r2 --export " + q(file));
  struct stat info {};
  REQUIRE(::stat(file.c_str(), &info) == 0);
  CHECK((info.st_mode & 077) == 0);
  CHECK(run_sqlpost("site key " + q(d.hub) + " r2 --export " + q(file)).exit_code != 0);
  sqlpost_ok("site key " + q(d.r2) + " hq --import " + q(file));
  CHECK(run_sqlpost("site key " + q(d.r2) + " hq").exit_code != 0);
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (32, 'after', 'west', 3, NULL)");
  d.run_until_quiet();
  d.expect_converged();
}
