// Replication end to end over the fake mail network: three sites, lossy
// channels, crashes between every step, hostile mail.
#include <doctest/doctest.h>

#include "replication/changelog.h"
#include "replication/engine.h"
#include "schema/metadata.h"
#include "tests/cluster.h"
#include "transport/codec.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

void writes_everywhere(Cluster& c, int transactions) {
  for (auto& s : c.sites()) {
    c.random_writes(s, transactions);
  }
}

void converge(Cluster& c, int rounds = 300) {
  const bool quiet = c.run_until_quiet(rounds);
  CHECK_MESSAGE(quiet, "the cluster did not become quiet");
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);
  const std::string twice = c.applied_twice();
  CHECK_MESSAGE(twice.empty(), twice);
}

}  // namespace

TEST_SUITE_BEGIN("replication");

TEST_CASE("three sites over a perfect channel converge, both directions") {
  TempDir dir;
  Cluster c(dir, 2, 1, {});
  for (int i = 0; i < 5; ++i) {
    writes_everywhere(c, 6);
    c.round();
  }
  converge(c);
  CHECK(query_int(*c.site("r2").db, "SELECT count(*) FROM item WHERE id < 1000000") > 0);
  CHECK(query_int(*c.site("r2").db, "SELECT count(*) FROM item WHERE id > 1000000 AND id < "
                                    "2000000") > 0);
}

TEST_CASE("three sites converge over a lossy channel for many seeds") {
  transport::FaultConfig faults;
  faults.drop = 0.15;
  faults.duplicate = 0.15;
  faults.reorder = 0.3;
  faults.delay = 0.2;
  faults.corrupt = 0.05;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    TempDir dir;
    Cluster c(dir, 2, seed, faults);
    for (int i = 0; i < 6; ++i) {
      writes_everywhere(c, 3);
      c.round();
    }
    // Let the faults go so the run can finish, then check.
    c.network().set_faults({});
    converge(c);
  }
}

TEST_CASE("an agent that dies between any two steps converges and applies nothing twice") {
  const std::vector<std::string> points = {"after-inbox-commit",  "before-apply-commit",
                                           "before-outbox-commit", "after-outbox-commit",
                                           "after-send",           "after-control-commit"};
  for (const auto& point : points) {
    for (int nth : {1, 2}) {
      CAPTURE(point);
      CAPTURE(nth);
      TempDir dir;
      transport::FaultConfig faults;
      faults.drop = 0.1;
      faults.duplicate = 0.1;
      Cluster c(dir, 2, static_cast<std::uint64_t>(nth) * 7919, faults);
      int hits = 0;
      auto crash = [&](std::string_view at) { return at == point && ++hits == nth; };
      for (int i = 0; i < 14; ++i) {
        if (i < 6) {
          writes_everywhere(c, 3);
        }
        c.round(crash);
      }
      CHECK_MESSAGE(hits >= nth, "the crash point was never reached");
      c.network().set_faults({});
      converge(c);
    }
  }
}

TEST_CASE("foreign mail is left alone; forged, misaddressed and unknown mail is set aside") {
  TempDir dir;
  Cluster c(dir, 2, 3, {});
  c.random_writes(c.site("hq"), 2);
  const std::string foreign =
      "From: boss@example.com\r\nTo: hq@hq.test\r\nSubject: lunch?\r\n\r\nAre you free?\r\n";
  c.network().put("hq@hq.test", foreign);
  // A message from r1 encrypted with the wrong key (a forgery).
  transport::Key wrong{};
  auto forged = transport::encode_message({"r1", "hq", 1}, "r1@r1.test", "hq@hq.test",
                                          std::vector<std::uint8_t>{1, 2, 3}, wrong, 8192);
  REQUIRE(forged.ok());
  c.network().put("hq@hq.test", forged->front());
  // From a site hq does not know, and one addressed to another site.
  auto stranger = transport::encode_message({"mallory", "hq", 1}, "m@x.test", "hq@hq.test",
                                            std::vector<std::uint8_t>{1}, wrong, 8192);
  c.network().put("hq@hq.test", stranger->front());
  auto misaddressed = transport::encode_message({"r1", "r2", 1}, "r1@r1.test", "hq@hq.test",
                                                std::vector<std::uint8_t>{1}, wrong, 8192);
  c.network().put("hq@hq.test", misaddressed->front());
  c.round();
  c.round();
  const auto hub_mail = c.network().mailbox("hq@hq.test");
  REQUIRE(hub_mail.size() == 1);
  CHECK(hub_mail.front() == foreign);
  Database& hub = *c.site("hq").db;
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_rejected") == 3);
  CHECK(query_int(hub, "SELECT rejected FROM sqlpost_streams WHERE site = 'r1'") == 2);
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_foreign_mail") == 1);
  converge(c);
  CHECK(c.network().mailbox("hq@hq.test").size() == 1);  // still there after many runs
}

TEST_CASE("a lost message is recovered by a resend request and by the resend timeout") {
  TempDir dir;
  Cluster c(dir, 1, 5, {});
  c.random_writes(c.site("hq"), 3);
  c.round();  // hq sends message 1
  c.random_writes(c.site("hq"), 3);
  // Drop everything hq sends in the next round (message 2), then deliver again.
  transport::FaultConfig lose_all;
  lose_all.drop = 1.0;
  c.network().set_faults(lose_all);
  c.round();
  c.network().set_faults({});
  c.random_writes(c.site("hq"), 3);  // message 3 arrives, 2 is missing: a gap
  converge(c);
  CHECK(query_int(*c.site("r1").db, "SELECT applied_seq FROM sqlpost_streams") >= 3);
}

TEST_SUITE_END();
