// What a pass costs and whom it serves as the number of partners grows: an idle
// pass writes nothing, and one partner that cannot be served does not stop the
// others (issue 11).
#include <doctest/doctest.h>

#include "replication/engine.h"
#include "replication/health.h"
#include "tests/cluster.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

// Another connection's view of how often the database changed.
std::int64_t data_version(Database& observer) { return query_int(observer, "PRAGMA data_version"); }

std::int64_t outbox_messages(Database& db, const std::string& site) {
  return query_int(db,
                   "SELECT count(DISTINCT seq) FROM sqlpost_outbox WHERE site = '" + site + "'");
}

RunReport run_hub(Cluster& c) {
  Engine engine(*c.site("hq").db, *c.site("hq").link, c.options());
  auto ran = engine.run_once();
  REQUIRE_MESSAGE(ran.ok(), (ran.ok() ? "" : ran.error().message));
  return std::move(ran).value();
}

}  // namespace

TEST_SUITE_BEGIN("scale");

TEST_CASE("an idle pass writes nothing to the database") {
  const TempDir dir;
  Cluster c(dir, 3, 11, {});
  c.random_writes(c.site("hq"), 3);
  c.random_writes(c.site("r2"), 3);
  REQUIRE(c.run_until_quiet(100));
  Database observer = open_db(c.site("hq").path);
  const std::int64_t before = data_version(observer);
  const RunReport report = run_hub(c);
  CHECK(report.messages_prepared == 0);
  CHECK(report.parts_sent == 0);
  CHECK(data_version(observer) == before);

  c.random_writes(c.site("hq"), 1);  // and a pass with work does write
  const std::int64_t written = data_version(observer);
  run_hub(c);
  CHECK(data_version(observer) != written);
}

TEST_CASE("a partner whose message cannot be prepared does not stop the others") {
  const TempDir dir;
  Cluster c(dir, 3, 12, {});
  REQUIRE(c.run_until_quiet(100));
  Database& hub = *c.site("hq").db;
  exec(hub, "UPDATE sqlpost_sites SET key = x'00' WHERE name = 'r2'");  // damaged metadata
  c.random_writes(c.site("hq"), 2);
  const RunReport report = run_hub(c);
  CHECK(report.messages_prepared == 2);
  CHECK(outbox_messages(hub, "r1") == 1);
  CHECK(outbox_messages(hub, "r2") == 0);
  CHECK(outbox_messages(hub, "r3") == 1);
  CHECK(report.worst == Errc::kConfig);
  bool named = false;
  for (const auto& problem : report.problems) {
    named = named || (problem.find("r2") != std::string::npos &&
                      problem.find("other partners go on") != std::string::npos);
  }
  CHECK_MESSAGE(named, "no problem names r2");
  CHECK(query_int(hub, "SELECT sent_epoch FROM sqlpost_sites WHERE name = 'r1'") >
        query_int(hub, "SELECT sent_epoch FROM sqlpost_sites WHERE name = 'r2'"));
}

TEST_SUITE_END();

TEST_CASE("a big epoch in many parts is applied whole or not at all") {
  const TempDir dir;
  Cluster c(dir, 1, 13, {});
  REQUIRE(c.run_until_quiet(50));
  exec(*c.site("hq").db,
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
       "INSERT INTO item SELECT 5000000 + i, 'bulk', i, 0.5, randomblob(16) FROM n");
  c.run(c.site("hq"));
  c.network().tick();
  REQUIRE(query_int(*c.site("hq").db, "SELECT count(DISTINCT part) FROM sqlpost_outbox") > 10);
  Site& r1 = c.site("r1");
  int reached = 0;
  c.run(r1, [&](std::string_view point) {
    reached += point == "before-apply-commit" ? 1 : 0;
    return point == "before-apply-commit";  // dies with every row bound, before COMMIT
  });
  CHECK(reached == 1);
  CHECK(query_int(*r1.db, "SELECT count(*) FROM item WHERE id > 5000000") == 0);
  CHECK(query_int(*r1.db, "SELECT applied_seq FROM sqlpost_streams WHERE site = 'hq'") == 0);
  CHECK(query_int(*r1.db, "SELECT count(*) FROM sqlpost_inbox") > 10);  // kept for the retry
  // Streamed (payload version 4): the message is applied in batches of 10,000
  // changes; dying after the first batch, half-way through the message, leaves
  // nothing of it either.
  int batches = 0;
  c.run(r1, [&](std::string_view point) {
    batches += point == "after-apply-batch" ? 1 : 0;
    return point == "after-apply-batch";
  });
  CHECK(batches == 1);
  CHECK(query_int(*r1.db, "SELECT count(*) FROM item WHERE id > 5000000") == 0);
  CHECK(query_int(*r1.db, "SELECT applied_seq FROM sqlpost_streams WHERE site = 'hq'") == 0);
  c.run(r1);  // the next run applies the whole epoch
  CHECK(query_int(*r1.db, "SELECT count(*) FROM item WHERE id > 5000000") == 20000);
  REQUIRE(c.run_until_quiet(50));
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("a child's health report replaces its last one: naming new sites cannot grow the table") {
  const TempDir dir;
  Cluster c(dir, 2, 14, {});
  Database& hub = *c.site("hq").db;
  const auto report = [](const std::string& below) {
    return std::vector<SiteHealth>{
        SiteHealth{"r1", "", "v", 1, 0, 0, 0, {}}, SiteHealth{below, "", "v", 1, 0, 0, 0, {}},
        SiteHealth{"r2", "", "v", 1, 0, 0, 0, {}}};  // a partner: ignored
  };
  for (int i = 0; i < 50; ++i) {
    REQUIRE(store_health(hub, "r1", report("shop" + std::to_string(i)), 100 + i).ok());
  }
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_site_health") == 2);  // r1 and shop49
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_site_health WHERE site = 'shop49'") == 1);
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_site_health WHERE site = 'r2'") == 0);
  REQUIRE(store_health(hub, "r1", {SiteHealth{"r2", "", "v", 1, 0, 0, 0, {}}}, 200).ok());
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_site_health") ==
        2);  // not its own: kept as was
}
