// Send schedules through the program: `site schedule` validates its input,
// `status` shows the schedule and the next send time, `run --once` leaves a
// partner that is not due alone and says so, and `run --send-now` forces it.
// Time is never waited for: the test makes the change log's epochs older with
// the sqlite3 shell.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <ctime>

#include "platform/process.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;
using nlohmann::json;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

struct Pair {
  TempDir dir;
  std::string hub = dir.path("hq.db");
  std::string r1 = dir.path("r1.db");
  std::string mail = dir.path("mail");

  Pair() {
    sqlite_shell(hub, "CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    sqlpost_ok("config " + q(hub) + " link=file file.dir=" + q(mail));
    sqlpost_ok("publish " + q(hub) + " sales t");
    sqlpost_ok("site add " + q(hub) + " r1 --address r1@r1.test");
    sqlpost_ok("subscribe " + q(hub) + " r1 sales");
    sqlpost_ok("extract " + q(hub) + " r1 --output " + q(r1));
  }

  [[nodiscard]] json partner() const {
    const auto r = run_sqlpost("status " + q(hub) + " --json");
    REQUIRE(r.exit_code == 0);
    return json::parse(r.output)["partners"][0];
  }

  [[nodiscard]] std::int64_t sent_seq() const {
    return partner()["delivery"]["last_sent_seq"].get<std::int64_t>();
  }

  [[nodiscard]] std::string rows(const std::string& db) const {
    auto d = open_db(db);
    std::string out;
    for (const auto& row : table_rows(d, "t")) {
      for (const auto& v : row) {
        out += v.debug_string() + " ";
      }
      out += "\n";
    }
    return out;
  }
};

// The next local midnight after `now`.
std::int64_t next_midnight(std::int64_t now) {
  std::tm t = platform::local_time(static_cast<std::time_t>(now));
  t.tm_mday += 1;
  t.tm_hour = 0;
  t.tm_min = 0;
  t.tm_sec = 0;
  t.tm_isdst = -1;
  return static_cast<std::int64_t>(platform::local_timestamp(t));
}

}  // namespace

TEST_SUITE_BEGIN("agent");

TEST_CASE("site schedule validates its input (exit 2) and site list shows it") {
  Pair p;
  for (const char* bad :
       {"--every 10s", "--every 25h", "--every 90s", "--every soon", "--at 25:00", "--at 02:00,",
        "--at 2pm", "--at 02:00 --every 6h", "--always --every 6h", ""}) {
    CAPTURE(bad);
    const auto r = run_sqlpost("site schedule " + q(p.hub) + " r1 " + bad);
    CHECK_MESSAGE(r.exit_code == 2, r.output);
  }
  CHECK(run_sqlpost("site schedule " + q(p.hub) + " nobody --every 6h").exit_code != 0);
  CHECK(p.partner()["send_schedule"] == "always");

  const auto set = run_sqlpost("site schedule " + q(p.hub) + " r1 --at 14:00,02:00");
  CHECK(set.exit_code == 0);
  CHECK_MESSAGE(set.output.find("site r1: send at 02:00, 14:00") != std::string::npos, set.output);
  CHECK(run_sqlpost("site list " + q(p.hub)).output.find("\tsend at 02:00,14:00") !=
        std::string::npos);
  sqlpost_ok("site schedule " + q(p.hub) + " r1 --always");
  CHECK(run_sqlpost("site list " + q(p.hub)).output.find("send") == std::string::npos);
}

TEST_CASE("run --once skips a partner not due, status shows when; due or --send-now sends") {
  Pair p;
  sqlpost_ok("run " + q(p.hub) + " --once");
  sqlpost_ok("site schedule " + q(p.hub) + " r1 --every 24h");
  sqlite_shell(p.hub, "INSERT INTO t VALUES (1, 'one')");
  const auto before = static_cast<std::int64_t>(std::time(nullptr));
  const auto run = run_sqlpost("run " + q(p.hub) + " --once");
  CHECK(run.exit_code == 0);
  CHECK_MESSAGE(run.output.find("send schedule: changes wait for r1 until ") != std::string::npos,
                run.output);
  CHECK(p.sent_seq() == 0);

  const json waiting = p.partner();
  CHECK(waiting["send_schedule"] == "every 24h");
  CHECK(waiting["send_due"] == false);
  const auto next = waiting["next_send_at"].get<std::int64_t>();
  const auto after = static_cast<std::int64_t>(std::time(nullptr));
  CHECK((next == next_midnight(before) || next == next_midnight(after)));
  const auto text = run_sqlpost("status " + q(p.hub)).output;
  CHECK_MESSAGE(text.find("send schedule: every 24h (local time); next message at " +
                          waiting["next_send_local"].get<std::string>()) != std::string::npos,
                text);

  // Two days later (the epochs made older): due, one message with the change.
  sqlite_shell(p.hub, "UPDATE sqlpost_epoch_marks SET closed_at = closed_at - 2 * 86400");
  CHECK(p.partner()["send_due"] == true);
  CHECK(
      run_sqlpost("status " + q(p.hub)).output.find("due: its next message goes at the next run") !=
      std::string::npos);
  sqlpost_ok("run " + q(p.hub) + " --once");
  CHECK(p.sent_seq() == 1);
  sqlpost_ok("run " + q(p.r1) + " --once");
  CHECK(p.rows(p.r1) == p.rows(p.hub));

  // A new change waits again; --send-now sends it at once.
  sqlite_shell(p.hub, "INSERT INTO t VALUES (2, 'two')");
  sqlpost_ok("run " + q(p.hub) + " --once");
  CHECK(p.sent_seq() == 1);
  sqlpost_ok("run " + q(p.hub) + " --once --send-now");
  CHECK(p.sent_seq() == 2);
  sqlpost_ok("run " + q(p.r1) + " --once");
  sqlpost_ok("run " + q(p.hub) + " --once");
  CHECK(p.rows(p.r1) == p.rows(p.hub));
  CHECK(p.rows(p.hub).find("two") != std::string::npos);
  CHECK(p.partner()["delivery"]["confirmed_seq"] == 2);  // acknowledgements flowed
}

TEST_SUITE_END();
