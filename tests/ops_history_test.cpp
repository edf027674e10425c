// History an administrator reads, end to end through the program and the file
// link: runs, the message log (sent, received, applied, acknowledged,
// rejected), statistics per partner per day, the queues, retention.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "tests/support.h"
#include "transport/codec.h"
#include "transport/key.h"

using namespace sqlpost;
using namespace sqlpost::test;
using nlohmann::json;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

json sqlpost_json(const std::string& args) {
  const auto r = run_sqlpost(args + " --json");
  REQUIRE_MESSAGE(r.exit_code == 0, args << "\n" << r.output);
  return json::parse(r.output);
}

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

  // A message for hq that claims to come from r1 but is sealed with another key.
  void deliver_forged() const {
    auto key = transport::generate_key();
    REQUIRE(key.ok());
    const std::vector<std::uint8_t> payload(100, 'x');
    auto forged = transport::encode_message({"r1", "hq", 7}, "r1@r1.test", "hq@hq.test", payload,
                                            *key, 100'000);
    REQUIRE(forged.ok());
    const std::string maildir = mail + "/hq@hq.test/new";
    std::filesystem::create_directories(maildir);
    std::ofstream(maildir + "/forged.eml", std::ios::binary) << forged->front();
  }
};

const json* find_event(const json& log, const std::string& event, std::int64_t seq) {
  for (const auto& m : log["messages"]) {
    if (m["event"] == event && m["seq"] == seq) {
      return &m;
    }
  }
  return nullptr;
}

}  // namespace

TEST_SUITE_BEGIN("ops-history");

TEST_CASE("runs, message log, statistics and queues of a hub and a remote") {
  Pair p;
  sqlite_shell(p.hub, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
  sqlpost_ok("run " + q(p.hub) + " --once");

  // The hub's outbox holds message 1 until r1 acknowledges it.
  const json queued = sqlpost_json("queue " + q(p.hub));
  CHECK(queued["schema"] == "sqlpost.queue");
  CHECK(queued["schema_version"] == 1);
  REQUIRE(queued["outbox"].size() == 1);
  CHECK(queued["outbox"][0]["partner"] == "r1");
  CHECK(queued["outbox"][0]["seq"] == 1);
  CHECK(queued["outbox"][0]["state"] == "sent, waiting for the acknowledgement");
  CHECK(queued["outbox"][0]["bytes"].get<std::int64_t>() > 0);
  CHECK(run_sqlpost("queue " + q(p.hub)).output.find("outbox: 1 part(s)\n  to r1 #1 part 1/1") !=
        std::string::npos);

  sqlpost_ok("run " + q(p.r1) + " --once");   // applies message 1, acknowledges it
  sqlpost_ok("run " + q(p.hub) + " --once");  // receives the acknowledgement
  CHECK(sqlpost_json("queue " + q(p.hub))["outbox"].empty());

  const json hub_log = sqlpost_json("log " + q(p.hub));
  CHECK(hub_log["schema"] == "sqlpost.log");
  CHECK(hub_log["schema_version"] == 1);
  CHECK(hub_log["site"] == "hq");
  const json* prepared = find_event(hub_log, "prepared", 1);
  const json* sent = find_event(hub_log, "sent", 1);
  const json* acknowledged = find_event(hub_log, "acknowledged", 1);
  REQUIRE(prepared != nullptr);
  REQUIRE(sent != nullptr);
  REQUIRE(acknowledged != nullptr);
  CHECK((*prepared)["partner"] == "r1");
  CHECK((*prepared)["changes"] == 3);
  // One part: the whole message, as sent with its own fresh Message-ID (a few bytes
  // longer than the stable one the outbox keeps; docs/protocol.md).
  const auto sent_bytes = (*sent)["bytes"].get<std::int64_t>();
  const auto prepared_bytes = (*prepared)["bytes"].get<std::int64_t>();
  CHECK(sent_bytes >= prepared_bytes);
  CHECK(sent_bytes - prepared_bytes <= 64);
  CHECK((*sent)["part"] == 1);
  CHECK((*sent)["parts"] == 1);
  CHECK((*acknowledged)["changes"] == 1);  // one message acknowledged
  CHECK((*acknowledged)["at"].get<std::int64_t>() >= (*sent)["at"].get<std::int64_t>());
  CHECK(find_event(hub_log, "received", 0) != nullptr);  // r1's acknowledgement message
  REQUIRE(hub_log["runs"].size() == 2);
  CHECK(hub_log["runs"][0]["outcome"] == "ok");
  CHECK(hub_log["runs"][0]["exit_code"] == 0);
  CHECK(hub_log["runs"][0]["mode"] == "full");
  CHECK(hub_log["runs"][0]["messages_prepared"] == 1);
  CHECK(hub_log["runs"][0]["parts_sent"] == 1);
  CHECK(hub_log["runs"][1]["parts_received"] == 0);  // an ack-only message is no stored part

  const json r1_log = sqlpost_json("log " + q(p.r1) + " --partner hq");
  const json* received = find_event(r1_log, "received", 1);
  const json* applied = find_event(r1_log, "applied", 1);
  REQUIRE(received != nullptr);
  REQUIRE(applied != nullptr);
  CHECK((*received)["bytes"] == (*sent)["bytes"]);
  CHECK((*applied)["changes"] == 3);
  CHECK(find_event(r1_log, "sent", 0) != nullptr);  // the acknowledgement
  CHECK(sqlpost_json("log " + q(p.hub) + " --partner r9")["messages"].empty());
  CHECK(sqlpost_json("log " + q(p.hub) + " --since 1h")["messages"].size() ==
        hub_log["messages"].size());
  CHECK(sqlpost_json("log " + q(p.hub) + " --since 2099-01-01")["messages"].empty());
  CHECK(run_sqlpost("log " + q(p.hub) + " --since yesterday").exit_code == 2);
  const auto text = run_sqlpost("log " + q(p.hub)).output;
  CHECK_MESSAGE(text.find("  r1  sent #1 part 1/1, ") != std::string::npos, text);
  CHECK(run_sqlpost("log " + q(p.hub) + " --runs").output.find("full: ok, exit 0") !=
        std::string::npos);

  const json hub_stats = sqlpost_json("stats " + q(p.hub));
  CHECK(hub_stats["schema"] == "sqlpost.stats");
  REQUIRE(hub_stats["days"].size() == 1);
  const json& day = hub_stats["days"][0];
  CHECK(day["partner"] == "r1");
  CHECK(day["messages_out"] == 1);
  CHECK(day["rows_out"] == 3);
  CHECK(day["parts_out"] == 1);  // message 1 (hq owed r1 no acknowledgement)
  CHECK(day["parts_in"] == 1);   // r1's acknowledgement message
  CHECK(day["messages_in"] == 0);
  CHECK(day["lag_max"].get<std::int64_t>() >= 0);
  const json r1_stats = sqlpost_json("stats " + q(p.r1));
  REQUIRE(r1_stats["days"].size() == 1);
  CHECK(r1_stats["days"][0]["messages_in"] == 1);
  CHECK(r1_stats["days"][0]["rows_in"] == 3);
  CHECK(r1_stats["days"][0]["bytes_in"] == (*sent)["bytes"]);

  // Rejected mail: in the log, the statistics, the queue's set-aside list and the run.
  p.deliver_forged();
  const auto rejected_run = run_sqlpost("run " + q(p.hub) + " --once");
  CHECK_MESSAGE(rejected_run.exit_code == 5, rejected_run.output);
  const json after = sqlpost_json("log " + q(p.hub));
  CHECK(after["runs"].back()["outcome"] == "problems");
  CHECK(after["runs"].back()["exit_code"] == 5);
  CHECK(after["runs"].back()["rejected"] == 1);
  const json& rejection = after["messages"].back();
  CHECK(rejection["event"] == "rejected");
  CHECK(rejection["partner"] == "r1");
  CHECK(rejection["bytes"].get<std::int64_t>() > 0);
  const json set_aside = sqlpost_json("queue " + q(p.hub));
  REQUIRE(set_aside["rejected"].size() == 1);
  CHECK(set_aside["rejected"][0]["claimed_sender"] == "r1");
  CHECK(sqlpost_json("stats " + q(p.hub))["days"][0]["rejected"] == 1);

  Database h = open_db(p.hub);
  Database r = open_db(p.r1);
  CHECK(compare_tables(h, r, "t").empty());
  CHECK(run_command("sqlite3 " + q(p.hub) + " 'PRAGMA integrity_check'").output == "ok\n");
}

TEST_CASE("history is pruned after history_retention and stats_retention") {
  Pair p;
  sqlite_shell(p.hub, "INSERT INTO t VALUES (1, 'a')");
  sqlpost_ok("run " + q(p.hub) + " --once");
  sqlpost_ok("config " + q(p.hub) + " history_retention=86400 stats_retention=864000");
  // Make the first run's history two days old, and add statistics from 20 days ago.
  sqlite_shell(p.hub,
               "UPDATE sqlpost_runs SET started_at = started_at - 172800, ended_at = ended_at - "
               "172800; UPDATE sqlpost_message_log SET at = at - 172800; INSERT INTO "
               "sqlpost_stats(day, partner) VALUES (date('now', '-20 days'), 'r1'), (date('now', "
               "'-5 days'), 'r1')");
  sqlpost_ok("run " + q(p.hub) + " --once");
  Database h = open_db(p.hub);
  CHECK(query_int(h, "SELECT count(*) FROM sqlpost_runs") == 1);  // this run only
  CHECK(query_int(h, "SELECT count(*) FROM sqlpost_message_log WHERE event = 'prepared'") == 0);
  CHECK(query_int(h, "SELECT count(*) FROM sqlpost_stats WHERE day < date('now', '-10 days')") ==
        0);
  CHECK(query_int(h, "SELECT count(*) FROM sqlpost_stats WHERE day = date('now', '-5 days')") == 1);
  CHECK(run_sqlpost("config " + q(p.hub) + " history_retention=60").exit_code == 2);
  CHECK(sqlpost_json("status " + q(p.hub))["schema_version"] == 1);
}
