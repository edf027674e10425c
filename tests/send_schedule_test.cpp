// Per-partner send schedules (SEND EVERY / SEND AT): the schedule arithmetic,
// and over the fake mail network a hub that sends one partner new data only
// when due while the other partner and the acknowledgements are unaffected.
#include <doctest/doctest.h>

#include <ctime>

#include "platform/process.h"
#include "replication/engine.h"
#include "replication/send_schedule.h"
#include "schema/metadata.h"
#include "tests/cluster.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

// 2026-12-07 at hh:mm local time, plus `days`.
std::int64_t local_at(int hh, int mm, int days = 0) {
  std::tm t{};
  t.tm_year = 2026 - 1900;
  t.tm_mon = 11;
  t.tm_mday = 7 + days;
  t.tm_hour = hh;
  t.tm_min = mm;
  t.tm_isdst = -1;
  return static_cast<std::int64_t>(platform::local_timestamp(t));
}

SendSchedule parsed(const std::string& text) {
  auto s = parse_send_schedule(text);
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return s.value();
}

std::int64_t next_seq_to(Database& db, const std::string& site) {
  return query_int(db, "SELECT next_seq FROM sqlpost_streams WHERE site = '" + site + "'");
}

std::int64_t acked_by(Database& db, const std::string& site) {
  return query_int(db, "SELECT acked_seq FROM sqlpost_streams WHERE site = '" + site + "'");
}

// One run at every site at local time `at`, then the mail moves.
void pass_at(Cluster& c, std::int64_t at) {
  for (auto& s : c.sites()) {
    c.clock() = at;
    c.run(s);
  }
  c.network().tick();
}

void converge(Cluster& c) {
  CHECK_MESSAGE(c.run_until_quiet(300), "the cluster did not become quiet");
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);
  const std::string twice = c.applied_twice();
  CHECK_MESSAGE(twice.empty(), twice);
}

// A quiet cluster of hq, r1 and r2 at 2026-12-07 00:00 local time, r1 sent to on `schedule`.
void start_quiet(Cluster& c, const std::string& schedule) {
  c.clock() = local_at(0, 0) - 3600;
  converge(c);
  REQUIRE(set_send_schedule(*c.site("hq").db, "r1", schedule).ok());
}

}  // namespace

TEST_SUITE_BEGIN("replication");

TEST_CASE("send schedules: parsing, canonical text and validation") {
  CHECK(parsed("").kind == SendSchedule::Kind::kAlways);
  CHECK(to_text(parsed("every 06:00")) == "every 06:00");
  CHECK(describe(parsed("every 06:00")) == "every 6h");
  CHECK(describe(parsed("every 01:30")) == "every 1h30m");
  CHECK(to_text(parsed("at 14:00,02:00,14:00")) == "at 02:00,14:00");
  CHECK(describe(parsed("at 14:00,02:00")) == "at 02:00, 14:00");
  CHECK(to_text(every_schedule(std::int64_t{90} * 60).value()) == "every 01:30");
  for (const char* bad :
       {"every", "every 00:00", "every 24:01", "every 6h", "at", "at 24:00", "at 2:5", "at 02:60",
        "at 02:00,", "at 02:00;14:00", "sometimes", "at -1:00", "at 02:00 "}) {
    CAPTURE(bad);
    CHECK(parse_send_schedule(bad).error().code == Errc::kInvalidArgument);
  }
  CHECK(!every_schedule(30).ok());                       // under a minute
  CHECK(!every_schedule(90).ok());                       // not whole minutes
  CHECK(!every_schedule(std::int64_t{25} * 3600).ok());  // over a day
  CHECK(every_schedule(std::int64_t{24} * 3600).ok());
}

TEST_CASE("send schedules: boundaries, due and next send in local time") {
  const SendSchedule every6 = parsed("every 06:00");
  CHECK(last_boundary(every6, local_at(5, 59)) == local_at(0, 0));
  CHECK(last_boundary(every6, local_at(6, 0)) == local_at(6, 0));
  CHECK(next_boundary(every6, local_at(6, 0)) == local_at(12, 0));
  CHECK(next_boundary(every6, local_at(23, 0)) == local_at(0, 0, 1));
  const SendSchedule every7 = parsed("every 07:00");  // restarts at midnight, as cron's */7
  CHECK(next_boundary(every7, local_at(21, 30)) == local_at(0, 0, 1));
  const SendSchedule at = parsed("at 02:00,14:00");
  CHECK(last_boundary(at, local_at(1, 0)) == local_at(14, 0, -1));
  CHECK(next_boundary(at, local_at(2, 0)) == local_at(14, 0));
  // Changes first closed at 01:00 go at 02:00 or later, not before.
  CHECK(!send_due(at, local_at(1, 0), local_at(1, 59)));
  CHECK(send_due(at, local_at(1, 0), local_at(2, 0)));
  CHECK(send_due(at, local_at(1, 0), local_at(9, 0)));  // the agent did not run at 02:00
  // Changes first closed at 02:05 wait for 14:00.
  CHECK(!send_due(at, local_at(2, 5), local_at(13, 59)));
  CHECK(next_send(at, local_at(2, 5), local_at(3, 0)) == local_at(14, 0));
  CHECK(next_send(at, local_at(1, 0), local_at(3, 0)) == local_at(3, 0));  // due: now
  CHECK(!send_due(at, 0, local_at(3, 0)));                                 // nothing pending
  CHECK(send_due(parsed(""), 0, local_at(3, 0)));
}

TEST_CASE("every 6h: one message covers the changes of many runs, sent exactly when due") {
  TempDir dir;
  Cluster c(dir, 2, 7, {});
  start_quiet(c, "every 06:00");
  Database& hub = *c.site("hq").db;
  const std::int64_t r1_before = next_seq_to(hub, "r1");
  const std::int64_t r2_before = next_seq_to(hub, "r2");
  Database& r1 = *c.site("r1").db;
  const std::int64_t r1_acked_before = acked_by(r1, "hq");
  for (int hour = 1; hour <= 5; ++hour) {
    c.random_writes(c.site("hq"), 2);
    c.random_writes(c.site("r1"), 1);
    pass_at(c, local_at(hour, 0));
    CAPTURE(hour);
    CHECK(next_seq_to(hub, "r1") == r1_before);  // r1 waits for 06:00
  }
  // r2 has no schedule: it got a message at every run with the hub's changes.
  CHECK(next_seq_to(hub, "r2") >= r2_before + 5);
  // The hub still acknowledged r1's messages at every run (ack-only messages).
  // Every message of r1 but the one still in flight was acknowledged.
  CHECK(acked_by(r1, "hq") > r1_acked_before);
  CHECK(acked_by(r1, "hq") + 2 >= next_seq_to(r1, "hq"));
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_outbox WHERE site = 'r1'") == 0);

  pass_at(c, local_at(5, 59));
  CHECK(next_seq_to(hub, "r1") == r1_before);
  CHECK(query_int(r1, "SELECT count(*) FROM item WHERE id < 1000000") == 0);
  CHECK(query_int(hub, "SELECT count(*) FROM item WHERE id < 1000000") > 0);
  pass_at(c, local_at(6, 0));
  CHECK(next_seq_to(hub, "r1") == r1_before + 1);  // exactly one message for six runs
  pass_at(c, local_at(6, 5));                      // r1 has every change of the hub up to 06:00
  const std::string diff = compare_tables(hub, *c.site("r1").db, "item");
  CHECK_MESSAGE(diff.empty(), diff);

  c.random_writes(c.site("hq"), 2);
  pass_at(c, local_at(6, 30));
  pass_at(c, local_at(11, 59));
  CHECK(next_seq_to(hub, "r1") == r1_before + 1);  // changes after 06:00 wait for 12:00
  pass_at(c, local_at(12, 0));
  CHECK(next_seq_to(hub, "r1") == r1_before + 2);

  REQUIRE(set_send_schedule(hub, "r1", "").ok());
  converge(c);
}

TEST_CASE("at 02:00,14:00: changes wait for the next time of day; --send-now forces") {
  TempDir dir;
  Cluster c(dir, 2, 11, {});
  start_quiet(c, "at 02:00,14:00");
  Database& hub = *c.site("hq").db;
  const std::int64_t before = next_seq_to(hub, "r1");
  c.random_writes(c.site("hq"), 3);
  pass_at(c, local_at(1, 0));
  pass_at(c, local_at(1, 59));
  CHECK(next_seq_to(hub, "r1") == before);
  pass_at(c, local_at(2, 1));
  CHECK(next_seq_to(hub, "r1") == before + 1);
  c.random_writes(c.site("hq"), 3);
  pass_at(c, local_at(3, 0));
  pass_at(c, local_at(13, 0));
  CHECK(next_seq_to(hub, "r1") == before + 1);

  // The pass names the waiting partner and its next time, and forcing sends at once.
  EngineOptions o = c.options();
  Engine waiting(hub, *c.site("hq").link, o);
  const auto waited = waiting.run_once();
  REQUIRE(waited.ok());
  bool named = false;
  for (const auto& note : waited.value().notes) {
    named = named || note.find("r1 until 2026-12-07 14:00") != std::string::npos;
  }
  CHECK_MESSAGE(named, "no note names r1 and 14:00");
  CHECK(next_seq_to(hub, "r1") == before + 1);
  o.ignore_send_schedule = true;
  Engine forced(hub, *c.site("hq").link, o);
  REQUIRE(forced.run_once().ok());
  CHECK(next_seq_to(hub, "r1") == before + 2);

  // An idle due pass writes nothing for the partner.
  for (int minute = 0; minute < 5; ++minute) {
    pass_at(c, local_at(14, minute));
  }
  const auto changes = query_int(hub, "SELECT total_changes()");
  c.clock() = local_at(14, 5);
  c.run(c.site("hq"));
  CHECK(query_int(hub, "SELECT total_changes()") == changes);

  REQUIRE(set_send_schedule(hub, "r1", "").ok());
  converge(c);
}

TEST_SUITE_END();
