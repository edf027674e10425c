// Site metadata: migrations, init, publications, sites and subscriptions.
#include <doctest/doctest.h>

#include "schema/capture.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

Database make_site(const TempDir& dir, const std::string& name = "hq") {
  Database db = open_db(dir.path(name + ".db"));
  REQUIRE(create_site_tables(db).ok());
  REQUIRE(init_site(db, LocalSite{name, name + "@example.test", Role::kConsolidated, ""}).ok());
  return db;
}

}  // namespace

TEST_SUITE_BEGIN("schema");

TEST_CASE("a new site records its schema version and local site") {
  TempDir dir;
  Database db = make_site(dir);
  CHECK(schema_version(db).value() == kSchemaVersion);
  const LocalSite site = load_local_site(db).value();
  CHECK(site.name == "hq");
  CHECK(site.role == Role::kConsolidated);
  CHECK(query_int(db, "SELECT epoch FROM sqlpost_epoch") == 1);
}

TEST_CASE("open_site refuses a database that is not a site, and one from a newer sqlpost") {
  TempDir dir;
  {
    Database plain = open_db(dir.path("plain.db"));
    exec(plain, "CREATE TABLE t(id INTEGER PRIMARY KEY)");
  }
  auto not_site = open_site(dir.path("plain.db"));
  REQUIRE_FALSE(not_site.ok());
  CHECK(not_site.error().code == Errc::kNotFound);
  CHECK(not_site.error().message.find("sqlpost init") != std::string::npos);

  {
    Database db = make_site(dir);
    exec(db, "UPDATE sqlpost_meta SET value = 99 WHERE key = 'schema_version'");
  }
  auto newer = open_site(dir.path("hq.db"));
  REQUIRE_FALSE(newer.ok());
  CHECK(newer.error().code == Errc::kUnsupported);
  CHECK(newer.error().message.find("newer sqlpost") != std::string::npos);
}

TEST_CASE("a schema 6 site is upgraded: its inbox keeps what waits there") {
  TempDir dir;
  {
    Database db = make_site(dir);
    exec(db,
         "DROP TABLE sqlpost_inbox; CREATE TABLE sqlpost_inbox(site TEXT NOT NULL, seq INTEGER "
         "NOT NULL, part INTEGER NOT NULL, parts INTEGER NOT NULL, mail BLOB NOT NULL, "
         "received_at INTEGER NOT NULL, PRIMARY KEY (site, seq, part)) WITHOUT ROWID; "
         "INSERT INTO sqlpost_inbox VALUES ('r1', 3, 1, 2, x'01', 5); "
         "ALTER TABLE sqlpost_streams DROP COLUMN restore_lost_from; DROP TABLE sqlpost_abandoned; "
         "DROP TABLE sqlpost_superseded; ALTER TABLE sqlpost_streams DROP COLUMN regen_from; "
         "ALTER TABLE sqlpost_streams DROP COLUMN regen_echo_from; "
         "ALTER TABLE sqlpost_streams DROP COLUMN regen_echo_to; "
         "ALTER TABLE sqlpost_bounce DROP COLUMN sent_in; "
         "ALTER TABLE sqlpost_sites DROP COLUMN send_schedule; DROP TABLE sqlpost_rekey; "
         "UPDATE sqlpost_meta SET value = 6 WHERE key = 'schema_version'");
  }
  Database db = open_site(dir.path("hq.db")).value();
  CHECK(schema_version(db).value() == kSchemaVersion);
  CHECK(query_int(db,
                  "SELECT count(*) FROM sqlpost_inbox WHERE site = 'r1' AND seq = 3 AND "
                  "digest = x'' AND part = 1 AND parts = 2 AND received_at = 5") == 1);
  CHECK(query_int(db, "SELECT count(restore_lost_from) FROM sqlpost_streams") == 0);
}

TEST_CASE("a schema 7 site is upgraded: its partners are sent to at every run") {
  TempDir dir;
  {
    Database db = make_site(dir);
    REQUIRE(add_partner(db, Partner{"r1", "r1@r1.test", Relation::kChild,
                                    std::vector<std::uint8_t>(32, 1), 0})
                .ok());
    exec(db,
         "ALTER TABLE sqlpost_sites DROP COLUMN send_schedule; DROP TABLE sqlpost_rekey; "
         "UPDATE sqlpost_meta SET value = 7 WHERE key = 'schema_version'");
  }
  Database db = open_site(dir.path("hq.db")).value();
  CHECK(schema_version(db).value() == kSchemaVersion);
  const auto partners = load_partners(db).value();
  REQUIRE(partners.size() == 1);
  CHECK(partners[0].send_schedule.empty());
  REQUIRE(set_send_schedule(db, "r1", "every 06:00").ok());
  CHECK(load_partners(db).value()[0].send_schedule == "every 06:00");
  CHECK(set_send_schedule(db, "nobody", "every 06:00").error().code == Errc::kNotFound);
}

TEST_CASE("a schema 8 site is upgraded: it gets the key-rotation table, its keys unchanged") {
  TempDir dir;
  {
    Database db = make_site(dir);
    REQUIRE(add_partner(db, Partner{"r1", "r1@r1.test", Relation::kChild,
                                    std::vector<std::uint8_t>(32, 1), 0})
                .ok());
    exec(db,
         "DROP TABLE sqlpost_rekey; "
         "UPDATE sqlpost_meta SET value = 8 WHERE key = 'schema_version'");
  }
  Database db = open_site(dir.path("hq.db")).value();
  CHECK(schema_version(db).value() == kSchemaVersion);
  CHECK(query_int(db, "SELECT count(*) FROM sqlpost_rekey") == 0);
  CHECK(load_partners(db).value()[0].key == std::vector<std::uint8_t>(32, 1));
  exec(db,
       "INSERT INTO sqlpost_rekey(site, state, initiator, started_at) VALUES ('r1', "
       "'offered', 1, 5)");
  REQUIRE(remove_partner(db, "r1").ok());  // the rotation goes with the partner
  CHECK(query_int(db, "SELECT count(*) FROM sqlpost_rekey") == 0);
}

TEST_CASE("site names are validated") {
  CHECK(validate_site_name("hq-1.a_b").ok());
  CHECK_FALSE(validate_site_name("").ok());
  CHECK_FALSE(validate_site_name("../x").ok());
  CHECK_FALSE(validate_site_name(".hidden").ok());
  CHECK_FALSE(validate_site_name("a b").ok());
  CHECK_FALSE(validate_site_name(std::string(65, 'a')).ok());
}

TEST_CASE("partners: add, duplicate, remove with subscriptions") {
  TempDir dir;
  Database db = make_site(dir);
  exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
  REQUIRE(publish(db, Article{"p", "t", {}, "", "", "incoming"}).ok());
  Partner r1{"r1", "r1@example.test", Relation::kChild, std::vector<std::uint8_t>(32, 7), 0};
  REQUIRE(add_partner(db, r1).ok());
  CHECK(add_partner(db, r1).error().code == Errc::kAlreadyExists);
  Partner self{"hq", "x@y", Relation::kChild, {}, 0};
  CHECK(add_partner(db, self).error().code == Errc::kInvalidArgument);
  REQUIRE(subscribe(db, {"r1", "p", ""}).ok());
  CHECK(subscribe(db, {"r1", "p", ""}).error().code == Errc::kAlreadyExists);
  CHECK(subscribe(db, {"r1", "nope", ""}).error().code == Errc::kNotFound);
  CHECK(subscribe(db, {"r9", "p", ""}).error().code == Errc::kNotFound);
  CHECK(load_partner(db, "r1").value().key == r1.key);
  exec(db, "INSERT INTO sqlpost_streams(site) VALUES ('r1')");
  exec(db, "INSERT INTO sqlpost_outbox VALUES ('r1', 1, 1, 1, x'00', 0, 0, NULL)");
  REQUIRE(remove_partner(db, "r1").ok());
  CHECK(load_subscriptions(db).value().empty());
  CHECK(query_int(db, "SELECT count(*) FROM sqlpost_outbox") == 0);  // nobody to send it to
  CHECK(query_int(db, "SELECT count(*) FROM sqlpost_streams") == 0);
  CHECK(remove_partner(db, "r1").error().code == Errc::kNotFound);
}

TEST_CASE("damaged column lists in the metadata are errors, never exceptions") {
  TempDir dir;
  Database db = make_site(dir);
  exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b TEXT)");
  REQUIRE(publish(db, Article{"p", "t", {"id", "a"}, "", "", "incoming"}).ok());
  for (const char* damaged : {"not json", "{\"a\": 1}", "[1, 2]", "[\"id\", null]", "["}) {
    CAPTURE(damaged);
    exec(db, "UPDATE sqlpost_articles SET columns = " + quote_literal(damaged));
    const auto articles = load_articles(db);
    REQUIRE_FALSE(articles.ok());
    CHECK(articles.error().code == Errc::kDatabase);
    CHECK(articles.error().message.find("damaged sqlpost metadata") != std::string::npos);
    exec(db, "UPDATE sqlpost_layouts SET columns = " + quote_literal(damaged));
    CHECK(load_layouts(db).error().code == Errc::kDatabase);
  }
  CHECK(parse_column_list("", "x").value().empty());
  CHECK(parse_column_list("[\"id\",\"a\"]", "x").value() == std::vector<std::string>{"id", "a"});
}

TEST_CASE("publish validates tables, keys and columns") {
  TempDir dir;
  Database db = make_site(dir);
  exec(db,
       "CREATE TABLE nokey(a, b);"
       "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b NOT NULL, c DEFAULT 1);"
       "CREATE TABLE k(x, y, z, PRIMARY KEY (x, y)) WITHOUT ROWID;"
       "CREATE VIEW v AS SELECT * FROM t;");
  auto publish_error = [&](Article a) { return publish(db, std::move(a)).error(); };
  CHECK(publish_error({"p", "missing", {}, "", "", "incoming"}).code == Errc::kNotFound);
  CHECK(publish_error({"p", "nokey", {}, "", "", "incoming"}).message.find("PRIMARY KEY") !=
        std::string::npos);
  CHECK(publish_error({"p", "v", {}, "", "", "incoming"}).message.find("view") !=
        std::string::npos);
  CHECK(publish_error({"p", "t", {"id", "nope"}, "", "", "incoming"}).code == Errc::kNotFound);
  CHECK(publish_error({"p", "k", {"x", "z"}, "", "", "incoming"}).message.find("'y'") !=
        std::string::npos);
  CHECK(publish_error({"p", "t", {"id", "a"}, "", "", "incoming"}).message.find("'b'") !=
        std::string::npos);
  CHECK(publish_error({"p", "t", {}, "no_such_col = 1", "", "incoming"}).code ==
        Errc::kInvalidArgument);
  CHECK(publish_error({"p", "t", {}, "", "", "loudest"}).code == Errc::kInvalidArgument);
  CHECK(publish_error({"p", "sqlpost_log", {}, "", "", "incoming"}).code == Errc::kInvalidArgument);
  CHECK(load_publications(db).value().empty());

  REQUIRE(publish(db, Article{"p", "T", {"ID", "b"}, "a IS NOT NULL", "a", "newest:c"}).ok());
  const auto articles = load_articles(db).value();
  REQUIRE(articles.size() == 1);
  CHECK(articles[0].table == "t");
  CHECK(articles[0].columns == std::vector<std::string>{"id", "b"});
  CHECK(articles[0].where_expr == "a IS NOT NULL");
  CHECK(publish_error({"p", "t", {}, "", "", "incoming"}).code == Errc::kAlreadyExists);
}

TEST_CASE("capture layout: union of article columns, key first; unpublish removes triggers") {
  TempDir dir;
  Database db = make_site(dir);
  exec(db, "CREATE TABLE t(a, b, c, id, PRIMARY KEY (id))");
  REQUIRE(publish(db, Article{"p1", "t", {"id", "c"}, "", "", "incoming"}).ok());
  REQUIRE(publish(db, Article{"p2", "t", {"b", "id"}, "", "", "incoming"}).ok());
  const CaptureLayout layout = capture_layout_for(db, "t").value();
  CHECK(layout.columns == std::vector<std::string>{"id", "b", "c"});
  CHECK(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'") == 3);
  REQUIRE(unpublish(db, "p1", "t").ok());
  CHECK(capture_layout_for(db, "t").value().columns == std::vector<std::string>{"id", "b"});
  REQUIRE(unpublish(db, "p2", "").ok());
  CHECK(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'") == 0);
  CHECK(load_publications(db).value() == std::vector<std::string>{"p1"});
  CHECK(unpublish(db, "p2", "").error().code == Errc::kNotFound);
}

TEST_CASE("control parameters persist") {
  TempDir dir;
  Database db = make_site(dir);
  REQUIRE(set_config(db, "link", "file").ok());
  CHECK(get_config(db, "link").value().value() == "file");
  CHECK_FALSE(get_config(db, "nope").value().has_value());
  REQUIRE(unset_config(db, "link").ok());
  CHECK(load_config(db).value().empty());
}

TEST_SUITE_END();

TEST_CASE("Statement::rows maps every row and leaves the statement ready to run again") {
  TempDir dir;
  Database db = open_db(dir.path("rows.db"));
  exec(db,
       "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b')");
  auto st = db.prepare("SELECT id, v FROM t WHERE id >= ? ORDER BY id");
  REQUIRE(st.ok());
  st->bind(1, std::int64_t{1});
  const auto both =
      st->rows([](const Statement& r) { return r.column_text(1) + r.column_text(0); });
  REQUIRE(both.ok());
  CHECK(both.value() == std::vector<std::string>{"a1", "b2"});
  st->bind(1, std::int64_t{2});
  CHECK(st->rows([](const Statement& r) { return r.column_int(0); }).value() ==
        std::vector<std::int64_t>{2});
  auto bad = db.prepare("SELECT abs(-9223372036854775807 - 1)");  // integer overflow at step
  REQUIRE(bad.ok());
  CHECK_FALSE(bad->rows([](const Statement& r) { return r.column_int(0); }).ok());
}
