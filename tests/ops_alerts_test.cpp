// Alerts, provoked one by one end to end (the program, the file link, a hub and
// a remote): each is shown by status, turns a clean run's exit code into 10,
// is set in the metrics file, and clears once its cause is gone. Time is
// never waited for: the thresholds are an hour and the test makes the
// relevant timestamps older with the sqlite3 shell.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support.h"
#include "transport/codec.h"
#include "transport/key.h"

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
  std::string metrics = dir.path("metrics/sqlpost.prom");

  Pair() {
    std::filesystem::create_directories(dir.path("metrics"));
    sqlite_shell(hub, "CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    sqlpost_ok("config " + q(hub) + " link=file file.dir=" + q(mail) +
               " alert.silent=3600 alert.unacknowledged=3600 alert.rejected=3600");
    sqlpost_ok("publish " + q(hub) + " sales t");
    sqlpost_ok("site add " + q(hub) + " r1 --address r1@r1.test");
    sqlpost_ok("subscribe " + q(hub) + " r1 sales");
    sqlpost_ok("extract " + q(hub) + " r1 --output " + q(r1));
  }

  [[nodiscard]] CommandResult run_hub() const {
    return run_sqlpost("run " + q(hub) + " --once --metrics " + q(metrics));
  }

  void run_r1() const { sqlpost_ok("run " + q(r1) + " --once"); }

  [[nodiscard]] std::string metric(const std::string& kind, const std::string& partner) const {
    const std::string text = read_file(metrics);
    const std::string series =
        R"(sqlpost_alert{site="hq",partner=")" + partner + R"(",kind=")" + kind + R"("} )";
    const auto at = text.find(series);
    REQUIRE_MESSAGE(at != std::string::npos, series << "\n" << text);
    return text.substr(at + series.size(), text.find('\n', at) - at - series.size());
  }

  [[nodiscard]] json alerts() const {
    const auto r = run_sqlpost("status " + q(hub) + " --json");
    REQUIRE(r.exit_code == 0);
    return json::parse(r.output)["alerts"];
  }

  void expect_alert(const std::string& kind, const std::string& partner, const std::string& text,
                    int exit_code) const {
    const auto status = run_sqlpost("status " + q(hub));
    CHECK_MESSAGE(status.output.find("ALERT " + kind + ": " + text) != std::string::npos,
                  status.output);
    const auto run = run_hub();
    CHECK_MESSAGE(run.exit_code == exit_code, run.output);
    CHECK_MESSAGE(run.output.find("[warn] ALERT " + kind + ": ") != std::string::npos, run.output);
    CHECK(metric(kind, partner) == "1");
    CHECK(read_file(metrics).find("sqlpost_last_run_exit_code{site=\"hq\"} " +
                                  std::to_string(exit_code) + "\n") != std::string::npos);
  }

  void expect_clear(const std::string& kind, const std::string& partner) const {
    const auto run = run_hub();
    CHECK_MESSAGE(run.exit_code == 0, run.output);
    CHECK(metric(kind, partner) == "0");
    CHECK(alerts().empty());
    CHECK(run_sqlpost("status " + q(hub)).output.find("alerts: none\n") != std::string::npos);
  }

  // Mail that claims to come from r1, sealed with a key nobody here has.
  void put_forged_mail() const {
    auto key = transport::generate_key();
    REQUIRE(key.ok());
    auto forged = transport::encode_message({"r1", "hq", 3}, "r1@r1.test", "hq@hq.test",
                                            std::vector<std::uint8_t>(50, 'x'), *key, 100'000);
    REQUIRE(forged.ok());
    std::filesystem::create_directories(mail + "/hq@hq.test/new");
    std::ofstream(mail + "/hq@hq.test/new/forged.eml", std::ios::binary) << forged->front();
  }

  void expect_converged() const {
    Database h = open_db(hub);
    Database r = open_db(r1);
    CHECK(compare_tables(h, r, "t").empty());
    for (const auto& db : {hub, r1}) {
      CHECK(run_command("sqlite3 " + q(db) + " 'PRAGMA integrity_check'").output == "ok\n");
    }
  }
};

}  // namespace

TEST_SUITE_BEGIN("ops-alerts");

TEST_CASE("no alert on a healthy pair; the metrics file is rewritten whole") {
  Pair p;
  const auto first = p.run_hub();
  CHECK_MESSAGE(first.exit_code == 0, first.output);
  CHECK(p.alerts().empty());
  const std::string text = read_file(p.metrics);
  for (const char* expected : {"# TYPE sqlpost_alert gauge\n", "sqlpost_alerts{site=\"hq\"} 0\n",
                               "sqlpost_partner_outbox_messages{site=\"hq\",partner=\"r1\"} 0\n",
                               "sqlpost_alert{site=\"hq\",partner=\"\",kind=\"rejected\"} 0\n"}) {
    CHECK_MESSAGE(text.find(expected) != std::string::npos, expected << "\n" << text);
  }
  // Nothing but the metrics file is left in its folder (the temporary file was renamed).
  CHECK(std::distance(std::filesystem::directory_iterator(p.dir.path("metrics")),
                      std::filesystem::directory_iterator()) == 1);
}

TEST_CASE("a silent partner raises an alert until it is heard from") {
  Pair p;
  sqlite_shell(p.hub, "UPDATE sqlpost_sites SET created_at = created_at - 7200");
  p.expect_alert("silent", "r1", "r1 has sent nothing for 2h ",
                 10);  // 2h and the seconds the test took
  sqlite_shell(p.r1, "INSERT INTO t VALUES (1, 'from r1')");
  p.run_r1();
  p.expect_clear("silent", "r1");
  p.run_r1();
  p.expect_converged();
}

TEST_CASE("a message unacknowledged for too long raises an alert until acknowledged") {
  Pair p;
  sqlite_shell(p.hub, "INSERT INTO t VALUES (1, 'to r1')");
  CHECK(p.run_hub().exit_code == 0);
  sqlite_shell(p.hub, "UPDATE sqlpost_outbox SET created_at = created_at - 7200");
  p.expect_alert("unacknowledged", "r1", "1 message(s) to r1 unacknowledged, the oldest (#1)", 10);
  p.run_r1();  // applies message 1 and acknowledges it
  p.expect_clear("unacknowledged", "r1");
  p.expect_converged();
}

TEST_CASE("a stopped stream raises an alert; the pass's own exit code wins") {
  Pair p;
  sqlite_shell(p.hub,
               "CREATE TRIGGER refuse BEFORE INSERT ON t WHEN NEW.id = 7 BEGIN SELECT "
               "RAISE(ABORT, 'row 7 refused'); END");
  sqlite_shell(p.r1, "INSERT INTO t VALUES (7, 'seven')");
  p.run_r1();
  const auto stopped = p.run_hub();
  CHECK_MESSAGE(stopped.exit_code == 8, stopped.output);  // the pass's own problem
  p.expect_alert("stopped", "r1", "applying messages from r1 stopped: ", 8);
  sqlite_shell(p.hub, "DROP TRIGGER refuse");
  p.expect_clear("stopped", "r1");
  p.run_r1();
  p.expect_converged();
}

TEST_CASE("rejected mail raises an alert for alert.rejected seconds") {
  Pair p;
  p.put_forged_mail();
  const auto rejecting = p.run_hub();
  CHECK_MESSAGE(rejecting.exit_code == 5, rejecting.output);  // the pass rejected it
  p.expect_alert("rejected", "r1", "1 mail(s) claiming to be from r1 rejected in the last 1h 0m",
                 10);  // later passes are clean, the alert stays
  sqlite_shell(p.hub, "UPDATE sqlpost_rejected SET received_at = received_at - 7200");
  p.expect_clear("rejected", "r1");
  p.expect_converged();
}

// What a mail server sends back for a mail it refused after accepting it (RFC 3464).
std::string user_unknown_report(const std::string& original) {
  return "From: MAILER-DAEMON@r1.test\r\nTo: <hq@hq.test>\r\nSubject: Undelivered Mail\r\n"
         "Message-ID: <bounce-1@r1.test>\r\nMIME-Version: 1.0\r\nContent-Type: "
         "multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n--b1\r\n"
         "Content-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n--b1"
         "\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; r1.test\r\n"
         "\r\nFinal-Recipient: rfc822; r1@r1.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
         "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--b1\r\nContent-Type: "
         "message/rfc822\r\n\r\n" +
         original + "\r\n--b1--\r\n";
}

TEST_CASE("a bounced part raises an alert for alert.bounced seconds") {
  Pair p;
  sqlpost_ok("config " + q(p.hub) + " alert.bounced=3600");
  sqlite_shell(p.hub, "INSERT INTO t VALUES (1, 'to r1')");
  CHECK(p.run_hub().exit_code == 0);
  // r1's server refuses the part after accepting it: the part leaves r1's mailbox,
  // the report reaches the hub's.
  const std::string inbox = p.mail + "/r1@r1.test/new";
  std::vector<std::filesystem::path> sent(std::filesystem::directory_iterator(inbox), {});
  REQUIRE(sent.size() == 1);
  const std::string original = read_file(sent.front().string());
  std::filesystem::remove(sent.front());
  std::filesystem::create_directories(p.mail + "/hq@hq.test/new");
  std::ofstream(p.mail + "/hq@hq.test/new/bounce.eml", std::ios::binary)
      << user_unknown_report(original);
  const auto bouncing = p.run_hub();
  CHECK_MESSAGE(bouncing.exit_code == 4, bouncing.output);  // a permanent refusal
  p.expect_alert(
      "bounced", "r1",
      "1 part(s) to r1 bounced in the last 1h 0m (newest: 5.1.1 smtp; 550 5.1.1 User unknown", 10);
  sqlite_shell(p.hub, "UPDATE sqlpost_bounces SET received_at = received_at - 7200");
  p.expect_clear("bounced", "r1");
  sqlpost_ok("resend " + q(p.hub) + " r1");
  CHECK(p.run_hub().exit_code == 0);
  p.run_r1();
  CHECK(p.run_hub().exit_code == 0);
  p.expect_converged();
}

TEST_CASE("a change log past alert.log_rows raises an alert naming the partner pruning waits for") {
  Pair p;
  sqlpost_ok("config " + q(p.hub) + " alert.log_rows=5");
  sqlite_shell(p.hub,
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
               "INSERT INTO t SELECT i, 'row ' || i FROM n");
  const auto growing = p.run_hub();
  CHECK_MESSAGE(growing.exit_code == 10, growing.output);
  p.expect_alert("log_size", "",
                 "the change log keeps about 10 changes (alert.log_rows=5; the database uses ", 10);
  CHECK(p.alerts()[0]["text"].get<std::string>().find(
            "pruning waits for site r1 to acknowledge what it was sent from epoch") !=
        std::string::npos);
  p.run_r1();  // acknowledges: kept only for log_retention now
  CHECK(p.run_hub().exit_code == 10);
  CHECK(p.alerts()[0]["text"].get<std::string>().find("it is kept for log_retention") !=
        std::string::npos);
  sqlpost_ok("config " + q(p.hub) + " log_retention=0");
  p.expect_clear("log_size", "");
  p.expect_converged();
}

TEST_CASE("alert.hook hears of an alert once when it is raised and once when it clears") {
  Pair p;
  const std::string told = p.dir.path("told.txt");
  sqlpost_ok("config " + q(p.hub) + " alert.hook=" +
             q("printf '%s %s %s %s\\n' \"$SQLPOST_ALERT_STATE\" \"$SQLPOST_ALERT_KIND\" "
               "\"$SQLPOST_ALERT_PARTNER\" \"$SQLPOST_SITE\" >> " +
               q(told)));
  CHECK(run_sqlpost("config " + q(p.hub) + " alert.mailto=not-an-address").exit_code == 2);
  p.put_forged_mail();
  CHECK(p.run_hub().exit_code == 5);
  CHECK(read_file(told) == "raised rejected r1 hq\n");
  CHECK(p.run_hub().exit_code == 10);  // still in force: not told again
  CHECK(read_file(told) == "raised rejected r1 hq\n");
  sqlite_shell(p.hub, "UPDATE sqlpost_rejected SET received_at = received_at - 7200");
  CHECK(p.run_hub().exit_code == 0);
  CHECK(read_file(told) == "raised rejected r1 hq\ncleared rejected r1 hq\n");

  // A hook that fails is tried again at the next pass, and the pass says so.
  sqlpost_ok("config " + q(p.hub) + " alert.hook=" + q("echo tried >> " + q(told) + "; exit 3"));
  sqlite_shell(p.hub, "UPDATE sqlpost_rejected SET received_at = received_at + 7200");
  const auto failing = p.run_hub();
  CHECK(failing.output.find("alert.hook exited with status 3") != std::string::npos);
  CHECK(p.run_hub().exit_code == 10);
  CHECK(read_file(told) == "raised rejected r1 hq\ncleared rejected r1 hq\ntried\ntried\n");
  p.expect_converged();
}
