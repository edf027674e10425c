// The command line: init, publish errors leave the database unchanged, sites,
// subscriptions and status.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

}  // namespace

TEST_CASE("init creates a site once; a second init fails clearly") {
  TempDir dir;
  const std::string db = dir.path("new.db");
  const auto first = run_sqlpost("init " + q(db) + " --site hq --address hq@hq.test");
  CHECK_MESSAGE(first.exit_code == 0, first.output);
  const auto again = run_sqlpost("init " + q(db) + " --site hq --address hq@hq.test");
  CHECK(again.exit_code != 0);
  CHECK(again.output.find("already an sqlpost site") != std::string::npos);
  const auto bad = run_sqlpost("init " + q(dir.path("b.db")) + " --site 'a/b' --address x@y");
  CHECK(bad.exit_code == 2);
  const auto not_site = run_sqlpost("status " + q(dir.path("none.db")));
  CHECK(not_site.exit_code != 0);
}

TEST_CASE("publish errors are one line, non-zero, and leave the database unchanged") {
  TempDir dir;
  const std::string db = dir.path("hq.db");
  {
    Database d = open_db(db);
    exec(d,
         "CREATE TABLE nokey(a); CREATE TABLE t(id INTEGER PRIMARY KEY, a, b NOT NULL);"
         "CREATE TABLE k(x, y, PRIMARY KEY (x, y))");
  }
  REQUIRE(run_sqlpost("init " + q(db) + " --site hq --address hq@hq.test").exit_code == 0);
  std::string before;
  {
    Database d = open_db(db);
    before = dump_database(d);
  }
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"publish " + q(db) + " p missing", "no such table: missing"},
      {"publish " + q(db) + " p nokey", "no declared PRIMARY KEY"},
      {"publish " + q(db) + " p t --columns id,zz", "has no column 'zz'"},
      {"publish " + q(db) + " p k --columns x", "primary-key column 'y'"},
      {"publish " + q(db) + " p t --columns id,a", "NOT NULL without a default"},
      {"publish " + q(db) + " p t --conflict best", "unknown conflict policy"},
  };
  for (const auto& entry : cases) {
    const std::string& args = entry.first;
    const std::string& expected = entry.second;
    const auto r = run_sqlpost(args);
    CHECK_MESSAGE(r.exit_code != 0, args);
    CHECK_MESSAGE(r.output.find(expected) != std::string::npos, r.output);
    CHECK_MESSAGE(std::count(r.output.begin(), r.output.end(), '\n') == 1, r.output);
    Database d = open_db(db);
    CHECK_MESSAGE(dump_database(d) == before, "database changed by: " << args);
  }
}

TEST_CASE("sites, subscriptions and status (text and JSON)") {
  TempDir dir;
  const std::string db = dir.path("hq.db");
  {
    Database d = open_db(db);
    exec(d, "CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
  }
  REQUIRE(run_sqlpost("init " + q(db) + " --site hq --address hq@hq.test").exit_code == 0);
  REQUIRE(run_sqlpost("publish " + q(db) + " sales t").exit_code == 0);
  REQUIRE(run_sqlpost("site add " + q(db) + " r1 --address r1@r.test").exit_code == 0);
  REQUIRE(run_sqlpost("site add " + q(db) + " r2 --address r2@r.test").exit_code == 0);
  CHECK(run_sqlpost("site add " + q(db) + " r2 --address r2@r.test").exit_code != 0);
  REQUIRE(run_sqlpost("subscribe " + q(db) + " r1 sales").exit_code == 0);
  CHECK(run_sqlpost("subscribe " + q(db) + " r9 sales").exit_code != 0);
  const auto list = run_sqlpost("site list " + q(db));
  CHECK(list.output.find("r1\tr1@r.test\tchild") != std::string::npos);
  {
    Database d = open_db(db);
    exec(d, "INSERT INTO t VALUES (1, 'a'), (2, 'b')");
  }
  const auto json_out = run_sqlpost("status " + q(db) + " --json");
  REQUIRE_MESSAGE(json_out.exit_code == 0, json_out.output);
  const auto status = nlohmann::json::parse(json_out.output);
  CHECK(status["site"] == "hq");
  CHECK(status["role"] == "consolidated");
  CHECK(status["publications"][0]["name"] == "sales");
  CHECK(status["partners"][0]["name"] == "r1");
  CHECK(status["partners"][0]["unsent_changes"] == 2);
  CHECK(status["partners"][1]["unsent_changes"] == 0);  // r2 subscribes to nothing
  const auto text = run_sqlpost("status " + q(db));
  CHECK(text.output.find("r1 <r1@r.test> child, 2 change(s) not yet sent") != std::string::npos);
  REQUIRE(run_sqlpost("unsubscribe " + q(db) + " r1 sales").exit_code == 0);
  CHECK(run_sqlpost("unsubscribe " + q(db) + " r1 sales").exit_code != 0);
  REQUIRE(run_sqlpost("site remove " + q(db) + " r2").exit_code == 0);
  CHECK(run_sqlpost("site list " + q(db)).output.find("r2") == std::string::npos);
}
