// Change capture: what the triggers write, whoever writes the database.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "replication/changelog.h"
#include "replication/origin.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

Database make_site(const TempDir& dir, const std::string& schema) {
  Database db = open_db(dir.path("site.db"));
  exec(db, schema);
  REQUIRE(create_site_tables(db).ok());
  REQUIRE(init_site(db, LocalSite{"hq", "hq@example.test", Role::kConsolidated, ""}).ok());
  return db;
}

void publish_table(Database& db, const std::string& table, std::vector<std::string> columns = {}) {
  auto r = publish(db, Article{"p", table, std::move(columns), "", "", "incoming"});
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
}

std::vector<Change> all_changes(Database& db) {
  const std::int64_t upto = cut_epoch(db).value();
  std::vector<Change> changes;
  auto r = read_changes(db, 0, upto, {}, [&](const Change& c) -> Result<> {
    changes.push_back(c);
    return success();
  });
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return changes;
}

std::vector<Value> edge_values() {
  std::string invalid_utf8 = "ok \xff\xfe \xc3\x28 \xed\xa0\x80 end";
  std::vector<std::uint8_t> mib(1 << 20);
  for (std::size_t i = 0; i < mib.size(); ++i) {
    mib[i] = static_cast<std::uint8_t>((i * 2654435761U) >> 13);
  }
  return {Value(),
          Value(std::int64_t{0}),
          Value(std::numeric_limits<std::int64_t>::max()),
          Value(-std::numeric_limits<std::int64_t>::max()),
          Value(std::numeric_limits<std::int64_t>::min()),
          Value(std::int64_t{9007199254740993}),  // 2^53 + 1: not exact in a double
          Value(0.0),
          Value(-0.0),
          Value(std::numeric_limits<double>::denorm_min()),
          Value(std::numeric_limits<double>::max()),
          Value(-std::numeric_limits<double>::infinity()),
          Value(0.1),
          Value(1.0),
          Value::text(""),
          Value::text("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 'quoted' \"dq\""),
          Value::text(invalid_utf8),
          Value(Blob{}),
          Value(Blob{{0, 1, 2, 0, 255}}),
          Value(Blob{mib})};
}

}  // namespace

TEST_SUITE_BEGIN("capture");

TEST_CASE("values round-trip bit for bit through the change log and back into a table") {
  TempDir dir;
  Database db = make_site(dir,
                          "CREATE TABLE v(id INTEGER PRIMARY KEY, any_col, txt TEXT, num REAL, "
                          "blb BLOB);"
                          "CREATE TABLE copy(id INTEGER PRIMARY KEY, any_col, txt TEXT, num REAL, "
                          "blb BLOB);");
  publish_table(db, "v");
  const auto values = edge_values();
  auto insert = db.prepare("INSERT INTO v VALUES (?, ?, ?, ?, ?)").value();
  for (std::size_t i = 0; i < values.size(); ++i) {
    insert.bind(1, static_cast<std::int64_t>(i));
    for (int c = 2; c <= 5; ++c) {
      insert.bind(c, values[i]);
    }
    REQUIRE(insert.run().ok());
  }
  const auto changes = all_changes(db);
  REQUIRE(changes.size() == values.size());
  auto apply = db.prepare("INSERT INTO copy VALUES (?, ?, ?, ?, ?)").value();
  for (const auto& change : changes) {
    CHECK(change.op == ChangeOp::kInsert);
    CHECK(change.origin.empty());
    for (std::size_t c = 0; c < change.new_values.size(); ++c) {
      apply.bind(static_cast<int>(c + 1), change.new_values[c]);
    }
    REQUIRE(apply.run().ok());
  }
  // The untyped column holds exactly the values we bound.
  const auto rows = table_rows(db, "v");
  for (std::size_t i = 0; i < values.size(); ++i) {
    CHECK_MESSAGE(rows[i][1] == values[i], "value " << i << ": " << values[i].debug_string());
  }
  CHECK(compare_tables(db, db, "v").empty());
  exec(db, "ALTER TABLE copy RENAME TO copy_of_v");
  exec(db,
       "CREATE VIEW cmp AS SELECT count(*) FROM v JOIN copy_of_v c USING (id) WHERE "
       "v.any_col IS NOT c.any_col OR v.txt IS NOT c.txt OR v.num IS NOT c.num OR "
       "v.blb IS NOT c.blb OR typeof(v.any_col) <> typeof(c.any_col)");
  CHECK(query_int(db, "SELECT * FROM cmp") == 0);
  const auto copied = table_rows(db, "copy_of_v");
  REQUIRE(copied.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t c = 0; c < rows[i].size(); ++c) {
      CHECK_MESSAGE(rows[i][c] == copied[i][c], "row " << i << " col " << c);
    }
  }
}

TEST_CASE("update carries old and new images; delete carries the old image") {
  TempDir dir;
  Database db = make_site(dir, "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b)");
  publish_table(db, "t");
  exec(db,
       "INSERT INTO t VALUES (1, 'x', 10); UPDATE t SET b = 11 WHERE id = 1;"
       "DELETE FROM t WHERE id = 1;");
  const auto changes = all_changes(db);
  REQUIRE(changes.size() == 3);
  CHECK(changes[1].op == ChangeOp::kUpdate);
  CHECK(changes[1].old_values[2] == Value(std::int64_t{10}));
  CHECK(changes[1].new_values[2] == Value(std::int64_t{11}));
  CHECK(changes[1].changed_columns() == std::vector<std::size_t>{2});
  CHECK(changes[2].op == ChangeOp::kDelete);
  CHECK(changes[2].new_values.empty());
  CHECK(changes[2].key() == Row{Value(std::int64_t{1})});
  CHECK(changes[2].old_values[1] == Value::text("x"));
}

TEST_CASE("composite keys and WITHOUT ROWID tables; a key update is delete + insert") {
  TempDir dir;
  Database db = make_site(dir,
                          "CREATE TABLE k(region TEXT, n INTEGER, v, PRIMARY KEY (n, "
                          "region)) WITHOUT ROWID");
  publish_table(db, "k");
  exec(db,
       "INSERT INTO k VALUES ('east', 1, 'a'); UPDATE k SET region = 'west' WHERE n = 1;"
       "UPDATE k SET v = 'b';");
  const auto changes = all_changes(db);
  REQUIRE(changes.size() == 4);
  CHECK(changes[0].layout->columns == std::vector<std::string>{"n", "region", "v"});
  CHECK(changes[0].key() == Row{Value(std::int64_t{1}), Value::text("east")});
  CHECK(changes[1].op == ChangeOp::kDelete);
  CHECK(changes[1].key() == Row{Value(std::int64_t{1}), Value::text("east")});
  CHECK(changes[2].op == ChangeOp::kInsert);
  CHECK(changes[2].key() == Row{Value(std::int64_t{1}), Value::text("west")});
  CHECK(changes[2].new_values[2] == Value::text("a"));
  CHECK(changes[3].op == ChangeOp::kUpdate);
}

TEST_CASE("a column subset is captured and updates of other columns are not") {
  TempDir dir;
  Database db = make_site(dir, "CREATE TABLE t(id INTEGER PRIMARY KEY, pub, secret)");
  publish_table(db, "t", {"id", "pub"});
  exec(db,
       "INSERT INTO t VALUES (1, 'a', 's'); UPDATE t SET secret = 't';"
       "UPDATE t SET pub = 'b';");
  const auto changes = all_changes(db);
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].new_values.size() == 2);
  CHECK(changes[1].new_values[1] == Value::text("b"));
}

TEST_CASE("writes from the sqlite3 shell and from another process are captured") {
  TempDir dir;
  {
    Database db = make_site(dir, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    publish_table(db, "t");
  }
  const auto shell = run_command("sqlite3 " + shell_quote(dir.path("site.db")) +
                                 " \"INSERT INTO t VALUES (1, 'shell'); UPDATE t SET v = 'x';\"");
  REQUIRE_MESSAGE(shell.exit_code == 0, shell.output);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto other = Database::open(dir.path("site.db"), Database::Mode::kReadWrite);
    const bool ok = other.ok() && other->exec("INSERT INTO t VALUES (2, 'child')").ok();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  Database db = open_db(dir.path("site.db"));
  const auto changes = all_changes(db);
  REQUIRE(changes.size() == 3);
  CHECK(changes[0].new_values[1] == Value::text("shell"));
  CHECK(changes[1].op == ChangeOp::kUpdate);
  CHECK(changes[2].new_values[1] == Value::text("child"));
}

TEST_CASE("rows written under an origin mark carry the origin; others never see the mark") {
  TempDir dir;
  Database db = make_site(dir, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  publish_table(db, "t");
  exec(db, "INSERT INTO t VALUES (1, 'local')");
  Database observer = open_db(dir.path("site.db"));
  {
    Transaction tx = Transaction::begin(db).value();
    OriginMark mark = OriginMark::set(db, "r1").value();
    exec(db, "INSERT INTO t VALUES (2, 'from r1'); UPDATE t SET v = 'r1 too' WHERE id = 1");
    CHECK(query_int(db, "SELECT count(*) FROM sqlpost_context") == 1);
    CHECK(query_int(observer, "SELECT count(*) FROM sqlpost_context") == 0);
    REQUIRE(mark.clear().ok());
    REQUIRE(tx.commit().ok());
  }
  CHECK(query_int(observer, "SELECT count(*) FROM sqlpost_context") == 0);
  exec(db, "INSERT INTO t VALUES (3, 'local again')");
  const auto changes = all_changes(db);
  REQUIRE(changes.size() == 4);
  CHECK(changes[0].origin.empty());
  CHECK(changes[1].origin == "r1");
  CHECK(changes[2].origin == "r1");
  CHECK(changes[3].origin.empty());
}

TEST_CASE("an origin mark needs a transaction, and a rolled back apply leaves nothing") {
  TempDir dir;
  Database db = make_site(dir, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  publish_table(db, "t");
  CHECK_FALSE(OriginMark::set(db, "r1").ok());
  {
    Transaction tx = Transaction::begin(db).value();
    OriginMark mark = OriginMark::set(db, "r1").value();
    exec(db, "INSERT INTO t VALUES (1, 'x')");
  }  // rolled back
  CHECK(query_int(db, "SELECT count(*) FROM sqlpost_context") == 0);
  CHECK(query_int(db, "SELECT count(*) FROM sqlpost_log") == 0);
}

TEST_CASE("reading an epoch that is not closed is refused; ranges do not overlap") {
  TempDir dir;
  Database db = make_site(dir, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  publish_table(db, "t");
  exec(db, "INSERT INTO t VALUES (1, 'a')");
  const std::int64_t e1 = cut_epoch(db).value();
  exec(db, "INSERT INTO t VALUES (2, 'b')");
  const std::int64_t e2 = cut_epoch(db).value();
  CHECK(e2 == e1 + 1);
  auto refuse = read_changes(db, 0, e2 + 1, {}, [](const Change&) { return success(); });
  CHECK(refuse.error().code == Errc::kInvalidArgument);
  int first = 0;
  int second = 0;
  REQUIRE(read_changes(db, 0, e1, {}, [&](const Change&) {
            ++first;
            return success();
          }).ok());
  REQUIRE(read_changes(db, e1, e2, {"t"}, [&](const Change&) {
            ++second;
            return success();
          }).ok());
  CHECK(first == 1);
  CHECK(second == 1);
  int filtered = 0;
  REQUIRE(read_changes(db, 0, e2, {"other"}, [&](const Change&) {
            ++filtered;
            return success();
          }).ok());
  CHECK(filtered == 0);
}

TEST_SUITE_END();
