// End to end through the sqlpost program and the real Postfix + Dovecot of
// tools/mailstack (MAILSTACK_* in the environment; without them every test fails
// unless SQLPOST_SKIP_MAIL=1). A hub and two remotes, each with its own mailbox:
// the hub sends by submission with STARTTLS + AUTH and reads by POP3 (STLS), site1
// reads by IMAP (STARTTLS), site2 uses implicit TLS for both (smtps, pop3s). Every
// scenario ends by comparing the databases row by row.
#include <doctest/doctest.h>
#include <poll.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/mail_support.h"
#include "tests/support.h"
#include "transport/codec.h"
#include "transport/key.h"
#include "transport/mail_links.h"

using namespace sqlpost;        // NOLINT(google-build-using-namespace)
using namespace sqlpost::test;  // NOLINT(google-build-using-namespace)

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

// login -> password, from MAILSTACK_USERS.
std::map<std::string, std::string> mail_passwords() { return mailstack_secrets("MAILSTACK_USERS"); }

bool mailstack_running() {
  return mailstack_ready(!env("MAILSTACK_SMTP_URL").empty(), "MAILSTACK_SMTP_URL is");
}

transport::MailServer pop3_server(const std::string& user) {
  transport::MailServer server;
  server.host = "127.0.0.1";
  server.port = static_cast<std::uint16_t>(std::stoi(env("MAILSTACK_POP3_PORT")));
  server.user = user;
  server.password = mail_passwords()[user];
  server.ca_file = env("MAILSTACK_CACERT");
  return server;
}

// Empties a test mailbox so that nothing of an earlier test case is seen.
void drain(const std::string& user) {
  auto link = transport::Pop3Link::open(pop3_server(user));
  REQUIRE(link.ok());
  auto refs = (*link)->list();
  REQUIRE_MESSAGE(refs.ok(), refs.error().message);
  for (const auto& ref : *refs) {
    REQUIRE((*link)->remove(ref).ok());
  }
  REQUIRE((*link)->close().ok());
}

std::size_t mailbox_size(const std::string& user) {
  auto link = transport::Pop3Link::open(pop3_server(user));
  REQUIRE(link.ok());
  auto refs = (*link)->list();
  REQUIRE(refs.ok());
  return refs->size();
}

// Postfix hands mail to the mailbox a moment after accepting it: polled for up to
// two minutes, so a loaded machine is slower but never gives another verdict.
void wait_for_mail(const std::string& user, std::size_t count) {
  for (int i = 0; i < 2400 && mailbox_size(user) < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(mailbox_size(user) == count);
}

// Puts a mail into `user`'s mailbox by plain SMTP, as any outside sender would.
void deliver(const std::string& address, const std::string& mail) {
  TempDir dir;
  const std::string file = dir.path("mail.eml");
  std::ofstream(file) << mail;
  const auto r =
      run_command("curl -sS " + q(env("MAILSTACK_SMTP_URL")) +
                  " --mail-from outsider@example.org --mail-rcpt " + q(address) + " -T " + q(file));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
}

nlohmann::json status_of(const std::string& db) {
  const auto r = run_sqlpost("status " + q(db) + " --json");
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.output);
}

// Runs `argv` on a new pseudo-terminal and answers its prompts like a person: for
// each (prompt, answer), waits until the terminal has shown `prompt`, then types
// `answer` and Enter. Hand-over by what the program printed, never by time (each
// wait is bounded by two minutes only so that a broken program cannot hang the test).
CommandResult run_on_terminal(const std::vector<std::string>& argv,
                              const std::vector<std::pair<std::string, std::string>>& dialogue) {
  int terminal = -1;
  const pid_t child = forkpty(&terminal, nullptr, nullptr, nullptr);
  REQUIRE(child >= 0);
  if (child == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));  // NOLINT: execv's signature
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  std::string shown;
  const auto read_some = [&]() {
    pollfd ready{terminal, POLLIN, 0};
    if (poll(&ready, 1, 120'000) <= 0) {
      return false;
    }
    std::array<char, 4096> buf{};
    const ssize_t n = read(terminal, buf.data(), buf.size());
    if (n <= 0) {
      return false;  // EIO once the program has exited
    }
    shown.append(buf.data(), static_cast<std::size_t>(n));
    return true;
  };
  std::size_t seen = 0;
  for (const auto& step : dialogue) {
    const std::string& prompt = step.first;
    const std::string& answer = step.second;
    while (shown.find(prompt, seen) == std::string::npos) {
      REQUIRE_MESSAGE(read_some(), "no prompt '" << prompt << "'; the terminal showed:\n" << shown);
    }
    seen = shown.find(prompt, seen) + prompt.size();
    const std::string line = answer + "\r";
    REQUIRE(write(terminal, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  }
  while (read_some()) {
  }
  close(terminal);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  return CommandResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, shown};
}

struct MailDeployment {
  TempDir dir;
  std::string hub = dir.path("hq.db");
  std::string s1 = dir.path("site1.db");
  std::string s2 = dir.path("site2.db");
  std::string port_submission = env("MAILSTACK_SUBMISSION_PORT");

  MailDeployment() {
    for (const char* user : {"hq", "site1", "site2"}) {
      drain(user);
    }
    sqlite_shell(hub,
                 "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT, "
                 "balance REAL, photo BLOB);"
                 "INSERT INTO customer VALUES (1, 'Ada', 'east', 10.5, x'00ff'), (2, 'Bob', NULL, "
                 "NULL, NULL);");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    sqlpost_ok("config " + q(hub) + " link=smtp smtp.host=127.0.0.1 smtp.port=" + port_submission +
               " pop3.host=127.0.0.1 pop3.port=" + env("MAILSTACK_POP3_PORT") +
               " pop3.user=hq tls.ca_file=" + q(env("MAILSTACK_CACERT")) +
               " max_message_bytes=16384 timeout=10");
    hub_password_from_file();
    sqlpost_ok("publish " + q(hub) + " sales customer");
    for (const char* r : {"site1", "site2"}) {
      sqlpost_ok("site add " + q(hub) + " " + r + " --address " + r + "@" + r + ".test");
      sqlpost_ok("subscribe " + q(hub) + " " + r + " sales");
    }
    sqlpost_ok("extract " + q(hub) + " site1 --output " + q(s1));
    sqlpost_ok("extract " + q(hub) + " site2 --output " + q(s2));
    configure_site1_imap();
    configure_site2_implicit_tls();
  }

  // The hub's password in a 0600 file.
  void hub_password_from_file() {
    const std::string file = dir.path("hq.password");
    std::ofstream(file) << mail_passwords()["hq"] << "\n";
    REQUIRE(chmod(file.c_str(), 0600) == 0);
    sqlpost_ok("config " + q(hub) + " pop3.password_file=" + q(file));
  }

  // site1: IMAP with STARTTLS; the password through --secret on standard input.
  void configure_site1_imap() {
    sqlpost_ok("config " + q(s1) +
               " receive=imap imap.host=127.0.0.1 imap.port=" + env("MAILSTACK_IMAP_PORT") +
               " imap.user=site1 tls.ca_file=" + q(env("MAILSTACK_CACERT")));
    const auto r =
        run_command("printf '%s\\n' " + q(mail_passwords()["site1"]) + " | " +
                    q(env("SQLPOST_BIN")) + " config " + q(s1) + " --secret imap.password");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  }

  // site2: implicit TLS for SMTP and POP3; the password from the environment.
  void configure_site2_implicit_tls() {
    REQUIRE(setenv("SQLPOST_TEST_SITE2_PASSWORD", mail_passwords()["site2"].c_str(), 1) == 0);
    sqlpost_ok("config " + q(s2) + " smtp.security=tls smtp.port=" + env("MAILSTACK_SMTPS_PORT") +
               " pop3.security=tls pop3.port=" + env("MAILSTACK_POP3S_PORT") +
               " pop3.user=site2 pop3.password_env=SQLPOST_TEST_SITE2_PASSWORD tls.ca_file=" +
               q(env("MAILSTACK_CACERT")));
  }

  // Exit code 10 (an alert in force, nothing else wrong) is accepted from the hub
  // when a test raises alerts on purpose.
  bool hub_alerts_expected = false;

  void round() {
    for (const auto& db : {hub, s1, s2}) {
      const auto r = run_sqlpost("run " + q(db) + " --once");
      const bool alert = hub_alerts_expected && db == hub && r.exit_code == 10;
      CHECK_MESSAGE((r.exit_code == 0 || alert), db << "\n" << r.output);
    }
  }

  // Mail takes a moment through Postfix: rounds with short pauses until every site
  // has nothing left to send, receive or confirm (up to 400 rounds: a loaded
  // machine needs more of them, never another verdict).
  void run_until_quiet() {
    for (int i = 0; i < 400; ++i) {
      round();
      if (site_quiet(hub) && site_quiet(s1) && site_quiet(s2)) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    FAIL("the sites did not become quiet in 400 rounds");
  }

  void expect_converged() {
    Database h = open_db(hub);
    for (const auto& path : {s1, s2}) {
      Database r = open_db(path);
      const std::string diff = compare_tables(h, r, "customer");
      CHECK_MESSAGE(diff.empty(), path << ": " << diff);
    }
    for (const auto& path : {hub, s1, s2}) {
      CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
    }
  }
};

}  // namespace

TEST_SUITE_BEGIN("e2e-mail");

TEST_CASE("hub and two remotes replicate both ways through SMTP, POP3 and IMAP") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  sqlite_shell(d.hub,
               "BEGIN; INSERT INTO customer VALUES (3, 'Cy', 'west', -0.0, zeroblob(0));"
               "UPDATE customer SET balance = 11.25 WHERE id = 1; COMMIT;");
  sqlite_shell(
      d.s1,
      "BEGIN; INSERT INTO customer VALUES (100, 'From site1', 'north', 1e-300, "
      "randomblob(40000)); INSERT INTO customer VALUES (101, 'big int', 9223372036854775807, "
      "NULL, NULL); COMMIT; DELETE FROM customer WHERE id = 2;");
  sqlite_shell(d.s2,
               "INSERT INTO customer VALUES (200, 'From site2 \xc3\xa9', NULL, 1e300, x'');"
               "UPDATE customer SET region = 'south' WHERE id = 3;");
  d.run_until_quiet();
  d.expect_converged();
  Database h = open_db(d.hub);
  CHECK(query_int(h, "SELECT count(*) FROM customer") == 5);  // 1, 3, 100, 101, 200

  sqlite_shell(d.s2, "UPDATE customer SET name = 'renamed at site2' WHERE id = 100;");
  sqlite_shell(d.s1, "DELETE FROM customer WHERE id = 200;");
  d.run_until_quiet();
  d.expect_converged();
  for (const char* user : {"hq", "site1", "site2"}) {
    CHECK_MESSAGE(mailbox_size(user) == 0, user << "'s mailbox still holds mail");
  }
}

TEST_CASE("foreign mail stays in the mailbox; a forged sqlpost message is rejected") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  deliver("hq@hq.test",
          "From: <friend@example.org>\r\nTo: <hq@hq.test>\r\nSubject: lunch?\r\n\r\nhi\r\n");
  // Looks like sqlpost mail from site1, but sealed with a key nobody here knows.
  auto key = transport::generate_key();
  REQUIRE(key.ok());
  const std::vector<std::uint8_t> payload(100, 'x');
  auto forged = transport::encode_message({"site1", "hq", 1}, "site1@site1.test", "hq@hq.test",
                                          payload, *key, 100'000);
  REQUIRE(forged.ok());
  REQUIRE(forged->size() == 1);
  deliver("hq@hq.test", forged->front());
  wait_for_mail("hq", 2);
  sqlite_shell(d.s1, "INSERT INTO customer VALUES (300, 'real change', NULL, NULL, NULL);");
  const auto first = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(first.exit_code == 5);  // rejected input
  CHECK(first.output.find("authentication") != std::string::npos);
  // Seen: without this, the "rejected" alert would make the next passes exit 10.
  sqlpost_ok("config " + q(d.hub) + " alert.rejected=0");
  d.run_until_quiet();
  d.expect_converged();

  CHECK(mailbox_size("hq") == 1);  // the foreign mail, and only it
  const auto status = status_of(d.hub);
  CHECK(status["rejected_mail"] == 1);
  Database h = open_db(d.hub);
  CHECK(query_int(h, "SELECT count(*) FROM customer WHERE id = 300") == 1);
  CHECK(query_int(h, "SELECT count(*) FROM sqlpost_foreign_mail") == 1);
}

TEST_CASE("alert.mailto: an administrator is mailed when an alert is raised and when it clears") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  sqlpost_ok("config " + q(d.hub) + " alert.mailto=site2@site2.test");  // the admin reads it
  auto key = transport::generate_key();
  REQUIRE(key.ok());
  auto forged = transport::encode_message({"site1", "hq", 1}, "site1@site1.test", "hq@hq.test",
                                          std::vector<std::uint8_t>(100, 'x'), *key, 100'000);
  REQUIRE(forged.ok());
  deliver("hq@hq.test", forged->front());
  wait_for_mail("hq", 1);
  CHECK(run_sqlpost("run " + q(d.hub) + " --once").exit_code == 5);
  CHECK(run_sqlpost("run " + q(d.hub) + " --once").exit_code == 10);  // told once, not again
  sqlite_shell(d.hub, "UPDATE sqlpost_rejected SET received_at = received_at - 172800");
  CHECK(run_sqlpost("run " + q(d.hub) + " --once").exit_code == 0);
  wait_for_mail("site2", 2);
  auto link = transport::Pop3Link::open(pop3_server("site2"));
  REQUIRE(link.ok());
  auto refs = (*link)->list();
  REQUIRE(refs.ok());
  std::string notices;
  for (const auto& ref : *refs) {
    auto mail = (*link)->fetch(ref);
    REQUIRE(mail.ok());
    CHECK_FALSE(transport::looks_like_sqlpost(*mail));
    notices += *mail;
    REQUIRE((*link)->remove(ref).ok());
  }
  REQUIRE((*link)->close().ok());
  CHECK(notices.find("Subject: sqlpost hq: alert raised rejected (site1)") != std::string::npos);
  CHECK(notices.find("Subject: sqlpost hq: alert cleared rejected (site1)") != std::string::npos);
  CHECK(notices.find("claiming to be from site1 rejected") != std::string::npos);
  d.run_until_quiet();
  d.expect_converged();
}

// The subjects of the notices waiting in `user`'s mailbox (which is then emptied).
std::string notices_for(const std::string& user) {
  auto link = transport::Pop3Link::open(pop3_server(user));
  REQUIRE(link.ok());
  auto refs = (*link)->list();
  REQUIRE(refs.ok());
  std::string subjects;
  for (const auto& ref : *refs) {
    auto mail = (*link)->fetch(ref);
    REQUIRE(mail.ok());
    CHECK_FALSE(transport::looks_like_sqlpost(*mail));
    const auto at = mail->find("Subject: ");
    REQUIRE(at != std::string::npos);
    subjects += mail->substr(at, mail->find("\r\n", at) - at) + "\n";
    REQUIRE((*link)->remove(ref).ok());
  }
  REQUIRE((*link)->close().ok());
  return subjects;
}

TEST_CASE(
    "alert.mailto: silent, unacknowledged, stopped and log_size are mailed raised and cleared") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  d.run_until_quiet();
  drain("probe");  // the administrator's mailbox
  d.hub_alerts_expected = true;
  sqlpost_ok("config " + q(d.hub) +
             " alert.mailto=probe@probe.test alert.silent=3600 alert.unacknowledged=3600");
  const auto hub_run = [&] { return run_sqlpost("run " + q(d.hub) + " --once").exit_code; };
  // Mail takes a moment through Postfix: the hub runs until it reports `code`.
  const auto hub_until = [&](int code) {
    for (int i = 0; i < 400 && hub_run() != code; ++i) {
      run_sqlpost("run " + q(d.s1) + " --once");
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    CHECK(hub_run() == code);
  };
  const auto expect_notices = [&](const std::string& kind) {
    wait_for_mail("probe", 2);
    const std::string got = notices_for("probe");
    CHECK_MESSAGE(got.find("Subject: sqlpost hq: alert raised " + kind) != std::string::npos, got);
    CHECK_MESSAGE(got.find("Subject: sqlpost hq: alert cleared " + kind) != std::string::npos, got);
  };
  // silent: site1 has sent nothing for 2 hours, as far as the hub knows.
  sqlite_shell(d.hub,
               "UPDATE sqlpost_sites SET created_at = created_at - 7200 WHERE name = "
               "'site1'; UPDATE sqlpost_streams SET last_received_at = NULL WHERE site = "
               "'site1'");
  CHECK(hub_run() == 10);
  sqlite_shell(d.s1, "INSERT INTO customer VALUES (40, 'from site1', 'east', 1, NULL)");
  d.run_until_quiet();
  expect_notices("silent (site1)");
  // unacknowledged: a message to site1 waits two hours for its acknowledgement.
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (41, 'to site1', 'east', 1, NULL)");
  CHECK(hub_run() == 0);
  sqlite_shell(d.hub,
               "UPDATE sqlpost_outbox SET created_at = created_at - 7200 WHERE site = "
               "'site1'");
  CHECK(hub_run() == 10);
  d.run_until_quiet();
  expect_notices("unacknowledged (site1)");
  // stopped: a message from site1 cannot be applied at the hub until the cause is fixed.
  sqlite_shell(d.hub,
               "CREATE TRIGGER refuse BEFORE INSERT ON customer WHEN NEW.id = 42 BEGIN "
               "SELECT RAISE(ABORT, 'row 42 refused'); END");
  sqlite_shell(d.s1, "INSERT INTO customer VALUES (42, 'refused', 'east', 1, NULL)");
  hub_until(8);
  sqlite_shell(d.hub, "DROP TRIGGER refuse");
  d.run_until_quiet();
  expect_notices("stopped (site1)");
  // log_size: more changes kept than alert.log_rows, until the remotes acknowledge.
  sqlpost_ok("config " + q(d.hub) + " alert.log_rows=5 log_retention=0");
  sqlite_shell(d.hub,
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
               "10) INSERT INTO customer SELECT 500 + i, 'bulk', 'east', i, NULL FROM n");
  CHECK(hub_run() == 10);
  d.run_until_quiet();
  CHECK(hub_run() == 0);  // acknowledged by both remotes: pruned, cleared
  expect_notices("log_size");
  d.expect_converged();
}

TEST_CASE("stopped_below: a leaf's stopped stream is seen at the hub, mailed raised and cleared") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  for (const char* user : {"probe", "site3"}) {
    drain(user);
  }
  d.hub_alerts_expected = true;
  sqlpost_ok("config " + q(d.hub) + " alert.mailto=probe@probe.test");
  // A leaf below site1, with a mailbox of its own (site3), POP3 and STARTTLS.
  const std::string leaf = d.dir.path("leaf.db");
  sqlpost_ok("site add " + q(d.s1) + " leaf --address site3@site3.test");
  sqlpost_ok("subscribe " + q(d.s1) + " leaf sales");
  sqlpost_ok("extract " + q(d.s1) + " leaf --output " + q(leaf));
  REQUIRE(setenv("SQLPOST_TEST_SITE3_PASSWORD", mail_passwords()["site3"].c_str(), 1) == 0);
  sqlpost_ok("config " + q(leaf) + " receive=pop3 pop3.port=" + env("MAILSTACK_POP3_PORT") +
             " pop3.user=site3 pop3.password_env=SQLPOST_TEST_SITE3_PASSWORD tls.ca_file=" +
             q(env("MAILSTACK_CACERT")));
  // Rounds of all four agents (mail takes a moment through Postfix) until `done`.
  const auto rounds_until = [&](const std::function<bool()>& done) {
    std::string last;  // what each agent said in the last round, for a failure
    for (int i = 0; i < 400 && !done(); ++i) {
      last.clear();
      for (const auto& db : {d.hub, d.s1, d.s2, leaf}) {
        last += db + ": " + run_sqlpost("run " + q(db) + " --once").output + "\n";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    REQUIRE_MESSAGE(done(), last);
  };
  const auto has_alert = [](const std::string& db, const char* kind, const char* partner) {
    const nlohmann::json status = status_of(db);  // outlives the loop over its alerts
    for (const auto& a : status["alerts"]) {
      if (a["kind"] == kind && a["partner"] == partner) {
        return true;
      }
    }
    return false;
  };
  const auto hub_alert = [&] { return has_alert(d.hub, "stopped_below", "leaf"); };
  // The leaf refuses a row from site1: its stream from site1 stops. A row it writes
  // itself carries its health to site1, and site1's next message up to the hub.
  sqlite_shell(leaf,
               "CREATE TRIGGER refuse BEFORE INSERT ON customer WHEN NEW.id = 43 BEGIN SELECT "
               "RAISE(ABORT, 'row 43 refused'); END");
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (43, 'for the leaf', 'east', 1, NULL)");
  rounds_until([&] { return has_alert(leaf, "stopped", "site1"); });
  sqlite_shell(leaf, "INSERT INTO customer VALUES (3043, 'from the leaf', 'east', 1, NULL)");
  rounds_until(hub_alert);
  const auto status = run_sqlpost("status " + q(d.hub));
  CHECK_MESSAGE(status.output.find("leaf (via site1)") != std::string::npos, status.output);
  CHECK_MESSAGE(status.output.find("ALERT stopped_below: ") != std::string::npos, status.output);
  const std::string metrics = d.dir.path("hq.prom");
  const auto metric = [&] {
    const std::string text = read_file(metrics);
    const std::string series = R"(sqlpost_alert{site="hq",partner="leaf",kind="stopped_below"} )";
    const auto at = text.find(series);
    REQUIRE_MESSAGE(at != std::string::npos, text);
    return text.substr(at + series.size(), 1);
  };
  const auto hub_run = [&] {
    return run_sqlpost("run " + q(d.hub) + " --once --metrics " + q(metrics)).exit_code;
  };
  CHECK(hub_run() == 10);  // an alert in force
  CHECK(metric() == "1");
  // The fix, by hand at the leaf: its stream goes on, its next report clears the alert.
  sqlite_shell(leaf, "DROP TRIGGER refuse");
  sqlite_shell(leaf, "INSERT INTO customer VALUES (3044, 'after the fix', 'east', 1, NULL)");
  rounds_until([&] { return !hub_alert(); });
  CHECK(hub_run() == 0);
  CHECK(metric() == "0");
  wait_for_mail("probe", 2);
  const std::string notices = notices_for("probe");
  CHECK_MESSAGE(
      notices.find("Subject: sqlpost hq: alert raised stopped_below (leaf)") != std::string::npos,
      notices);
  CHECK_MESSAGE(
      notices.find("Subject: sqlpost hq: alert cleared stopped_below (leaf)") != std::string::npos,
      notices);
  d.run_until_quiet();
  rounds_until([&] { return site_quiet(leaf) && site_quiet(d.s1); });
  d.expect_converged();
  Database h = open_db(d.hub);
  Database l = open_db(leaf);
  const std::string diff = compare_tables(h, l, "customer");
  CHECK_MESSAGE(diff.empty(), "leaf: " << diff);
  CHECK(run_command("sqlite3 " + q(leaf) + " 'PRAGMA integrity_check'").output == "ok\n");
}

TEST_CASE("smtp.etrn asks Postfix to deliver a queued domain; a refusal says why") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  sqlpost_ok("config " + q(d.hub) + " smtp.etrn=etrn.test");  // in fast_flush_domains
  const auto accepted = run_sqlpost("run " + q(d.hub) + " --once -v");
  CHECK_MESSAGE(accepted.exit_code == 0, accepted.output);
  CHECK_MESSAGE(accepted.output.find("ETRN etrn.test: 250") != std::string::npos, accepted.output);
  sqlpost_ok("config " + q(d.hub) + " smtp.etrn=elsewhere.test");  // not queued there
  const auto refused = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK_MESSAGE(refused.exit_code == 4, refused.output);
  CHECK(refused.output.find("ETRN elsewhere.test") != std::string::npos);
  CHECK(refused.output.find("459") != std::string::npos);
  CHECK(refused.output.find("fast_flush_domains") != std::string::npos);
  CHECK(run_sqlpost("config " + q(d.hub) + " smtp.etrn=bad/domain").exit_code == 2);
  sqlpost_ok("config " + q(d.hub) + " smtp.etrn=");  // unset
  d.run_until_quiet();
  d.expect_converged();
}

namespace {

// Lines of one of the stack's logs ($MAILSTACK_DIR/log/NAME) that contain `text` and `also`.
std::size_t log_lines(const std::string& name, const std::string& text,
                      const std::string& also = "") {
  std::ifstream in(env("MAILSTACK_DIR") + "/log/" + name);
  std::size_t count = 0;
  for (std::string line; std::getline(in, line);) {
    count += line.find(text) != std::string::npos && line.find(also) != std::string::npos ? 1 : 0;
  }
  return count;
}

// Dovecot writes its log through its log process, a moment after the login: polled
// (bounded, like wait_for_mail) until the count is reached.
void wait_for_log(const std::string& name, const std::string& text, const std::string& also,
                  std::size_t count) {
  for (int i = 0; i < 2400 && log_lines(name, text, also) < count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_MESSAGE(log_lines(name, text, also) == count, name << ": '" << text << "'");
}

// Polls until `user`'s mailbox holds more than `than` mails.
void wait_for_more_mail(const std::string& user, std::size_t than) {
  for (int i = 0; i < 2400 && mailbox_size(user) <= than; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(mailbox_size(user) > than);
}

}  // namespace

TEST_CASE("smtp.pop_before_smtp: runs that only send log into the mailbox first") {
  if (!mailstack_running()) {
    return;
  }
  REQUIRE_MESSAGE(!env("MAILSTACK_DIR").empty(), "MAILSTACK_DIR (from mailstack.env) is needed");
  MailDeployment d;
  const std::string login = "pop3-login: Info: Login: user=<hq>";
  const std::string read_nothing = "Logged out top=0/0, retr=0/0, del=0/0";
  const std::string submission = "postfix/submission/smtpd[";
  // SMTP keeps the right password of its own; the POP3 one is what the test breaks.
  const std::string right = d.dir.path("hq.password");
  const std::string wrong = d.dir.path("wrong.password");
  std::ofstream(wrong) << "not-the-password\n";
  REQUIRE(chmod(wrong.c_str(), 0600) == 0);
  sqlpost_ok("config " + q(d.hub) + " smtp.password_file=" + q(right) +
             " smtp.pop_before_smtp=yes");
  CHECK(run_sqlpost("config " + q(d.hub) + " smtp.pop_before_smtp=maybe").exit_code == 2);

  // A send-only run: one POP3 login that reads nothing, then the mail goes out.
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (400, 'pop first', NULL, NULL, NULL);");
  const std::size_t logins = log_lines("dovecot.log", login);
  const std::size_t sessions = log_lines("dovecot.log", "pop3(hq)", read_nothing);
  const std::size_t site1_mail = mailbox_size("site1");
  const auto sent = run_sqlpost("run " + q(d.hub) + " --once --send-only");
  CHECK_MESSAGE(sent.exit_code == 0, sent.output);
  wait_for_log("dovecot.log", login, "", logins + 1);
  wait_for_log("dovecot.log", "pop3(hq)", read_nothing, sessions + 1);
  wait_for_more_mail("site1", site1_mail);

  // The order: with the mailbox login refused, the SMTP server is never contacted.
  sqlpost_ok("config " + q(d.hub) + " pop3.password_file=" + q(wrong));
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (401, 'gated', NULL, NULL, NULL);");
  const std::size_t connects = log_lines("postfix.log", submission, "connect from");
  const auto gated = run_sqlpost("run " + q(d.hub) + " --once --send-only");
  CHECK_MESSAGE(gated.exit_code == 3, gated.output);
  CHECK_MESSAGE(gated.output.find("POP-before-SMTP") != std::string::npos, gated.output);
  CHECK_MESSAGE(gated.output.find("wrong user name or password") != std::string::npos,
                gated.output);
  CHECK(log_lines("postfix.log", submission, "connect from") == connects);

  // sqlpost check walks the mailbox first, then SMTP.
  const auto refused_check = run_sqlpost("check " + q(d.hub));
  CHECK(refused_check.exit_code == 4);
  CHECK_MESSAGE(refused_check.output.find("FAIL smtp: POP-before-SMTP") != std::string::npos,
                refused_check.output);
  CHECK(refused_check.output.find("smtp: connect") == std::string::npos);
  sqlpost_ok("config " + q(d.hub) + " pop3.password_file=" + q(right));
  const auto check = run_sqlpost("check " + q(d.hub));
  CHECK_MESSAGE(check.exit_code == 0, check.output);
  const std::size_t pop3_login = check.output.find("ok   pop3: login");
  const std::size_t gate = check.output.find("ok   smtp: POP-before-SMTP");
  const std::size_t smtp_connect = check.output.find("ok   smtp: connect");
  REQUIRE_MESSAGE(pop3_login != std::string::npos, check.output);
  REQUIRE(gate != std::string::npos);
  REQUIRE(smtp_connect != std::string::npos);
  CHECK(pop3_login < gate);
  CHECK(gate < smtp_connect);

  // Without the setting a send-only run does not log in; with it, replication converges.
  sqlpost_ok("config " + q(d.hub) + " smtp.pop_before_smtp=no");
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (402, 'no gate', NULL, NULL, NULL);");
  const std::size_t before = log_lines("dovecot.log", login);
  const std::size_t site1_before = mailbox_size("site1");
  CHECK(run_sqlpost("run " + q(d.hub) + " --once --send-only").exit_code == 0);
  wait_for_more_mail("site1", site1_before);
  CHECK(log_lines("dovecot.log", login) == before);
  sqlpost_ok("config " + q(d.hub) + " smtp.pop_before_smtp=yes");
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE("SMTP server unreachable: exit code 4, nothing lost, delivered once it is back") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (400, 'while down', NULL, NULL, NULL);");
  sqlpost_ok("config " + q(d.hub) + " smtp.port=1 timeout=2");  // nothing listens there
  const auto down = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(down.exit_code == 4);
  CHECK(down.output.find("kept in the outbox") != std::string::npos);
  CHECK(status_of(d.hub)["partners"][0]["delivery"]["outbox_messages"] == 1);

  sqlpost_ok("config " + q(d.hub) + " smtp.port=" + d.port_submission + " timeout=10");
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE("Postfix stopped during a run: exit code 4, nothing lost, delivered once it is back") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  const std::string postfix = "postfix -c " + q(env("MAILSTACK_DIR") + "/etc/postfix");
  sqlite_shell(d.hub,
               "INSERT INTO customer VALUES (450, 'while Postfix is down', NULL, NULL, NULL);");
  REQUIRE(run_command(postfix + " stop").exit_code == 0);
  const auto down = run_sqlpost("run " + q(d.hub) + " --once");
  const auto started = run_command(postfix + " start");
  const auto listening =
      run_command("bash -c 'for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/" +
                  d.port_submission + ") 2>/dev/null && exit 0; sleep 0.1; done; exit 1'");
  REQUIRE(started.exit_code == 0);
  REQUIRE(listening.exit_code == 0);
  CHECK(down.exit_code == 4);
  CHECK(down.output.find("kept in the outbox") != std::string::npos);
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE("a permanent refusal (550 unknown user) is reported and not retried every run") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  sqlpost_ok("site add " + q(d.hub) + " ghost --address nobody@site1.test");
  sqlpost_ok("subscribe " + q(d.hub) + " ghost sales");
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (500, 'for everyone', NULL, NULL, NULL);");
  const auto refused = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(refused.exit_code == 4);
  CHECK_MESSAGE(refused.output.find("refused message 1 part 1 to ghost") != std::string::npos,
                refused.output);
  CHECK(refused.output.find("550") != std::string::npos);
  const auto again = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(again.output.find("ghost") == std::string::npos);  // not tried again at once
  sqlpost_ok("unsubscribe " + q(d.hub) + " ghost sales");
  sqlpost_ok("site remove " + q(d.hub) + " ghost");
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE(
    "a part Postfix accepts and then bounces: its real DSN is matched, shown, removed and "
    "mailed as an alert that clears") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  drain("probe");
  d.hub_alerts_expected = true;
  sqlpost_ok("config " + q(d.hub) + " alert.mailto=probe@probe.test");
  // bounce.test is accepted at RCPT, then bounced by Postfix's error transport
  // (tools/mailstack): the delivery status notification comes back to hq@hq.test.
  sqlpost_ok("site add " + q(d.hub) + " shop --address shop@bounce.test");
  sqlpost_ok("subscribe " + q(d.hub) + " shop sales");
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (600, 'for the shop', NULL, NULL, NULL);");
  const auto sent = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK_MESSAGE(sent.exit_code == 0, sent.output);  // accepted upstream: nothing known yet
  wait_for_mail("hq", 1);
  const auto bounced = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK_MESSAGE(bounced.exit_code != 0, bounced.output);
  CHECK(mailbox_size("hq") == 0);  // the report was ours: recorded, then removed
  {
    Database h = open_db(d.hub);
    CHECK(query_int(h,
                    "SELECT count(*) FROM sqlpost_bounces WHERE site = 'shop' AND seq = 1 AND "
                    "status = '5.1.1'") == 1);
  }
  const auto status = run_sqlpost("status " + q(d.hub));
  CHECK_MESSAGE(status.output.find("BOUNCED") != std::string::npos, status.output);
  CHECK_MESSAGE(status.output.find("mailbox unavailable at the remote server") != std::string::npos,
                status.output);
  wait_for_mail("probe", 1);
  // A day later the bounce is no longer recent: the alert clears, and says so once.
  sqlite_shell(d.hub, "UPDATE sqlpost_bounces SET received_at = received_at - 172800");
  const auto later = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK_MESSAGE(later.exit_code == 0, later.output);
  wait_for_mail("probe", 2);
  const std::string notices = notices_for("probe");
  CHECK_MESSAGE(
      notices.find("Subject: sqlpost hq: alert raised bounced (shop)") != std::string::npos,
      notices);
  CHECK_MESSAGE(
      notices.find("Subject: sqlpost hq: alert cleared bounced (shop)") != std::string::npos,
      notices);
  sqlpost_ok("unsubscribe " + q(d.hub) + " shop sales");
  sqlpost_ok("site remove " + q(d.hub) + " shop");
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE("an untrusted certificate is a configuration error that loses nothing") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  sqlite_shell(d.s1, "INSERT INTO customer VALUES (600, 'waits for trust', NULL, NULL, NULL);");
  sqlpost_ok("config " + q(d.s1) + " tls.ca_file=");  // the system store: self-signed fails
  const auto untrusted = run_sqlpost("run " + q(d.s1) + " --once");
  CHECK(untrusted.exit_code == 3);
  CHECK_MESSAGE(untrusted.output.find("certificate") != std::string::npos, untrusted.output);
  sqlpost_ok("config " + q(d.s1) + " tls.ca_file=" + q(env("MAILSTACK_CACERT")));
  d.run_until_quiet();
  d.expect_converged();
}

TEST_CASE("agents killed with SIGKILL during runs converge after the next runs") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  int killed = 0;
  for (int i = 0; i < 6; ++i) {
    const std::string id = std::to_string(700 + i);
    sqlite_shell(d.hub, "INSERT INTO customer VALUES (" + id + ", 'hub', NULL, NULL, NULL);");
    sqlite_shell(d.s1,
                 "INSERT INTO customer VALUES (" + id + "0, 's1', NULL, NULL, randomblob(30000));");
    for (const auto& db : {d.hub, d.s1, d.s2}) {
      // Killed after 0..50 ms: before, while or after talking to the servers.
      const auto r = run_command(
          q(env("SQLPOST_BIN")) + " run " + q(db) + " --once >/dev/null 2>&1 & pid=$!; sleep 0.0" +
          std::to_string(i * 10 % 60) + "; kill -9 $pid 2>/dev/null; wait $pid");
      killed += r.exit_code == 137 ? 1 : 0;  // 128 + SIGKILL; 0 when it finished first
    }
  }
  CHECK(killed > 0);
  d.run_until_quiet();
  d.expect_converged();
  Database h = open_db(d.hub);
  CHECK(query_int(h, "SELECT count(*) FROM customer WHERE id >= 700") == 12);
}

TEST_CASE("first run on a terminal asks for the missing settings, tests and stores them") {
  if (!mailstack_running()) {
    return;
  }
  drain("hq");
  TempDir dir;
  const std::string db = dir.path("first.db");
  sqlpost_ok("init " + q(db) + " --site hq --address hq@hq.test");
  sqlpost_ok("config " + q(db) + " link=smtp smtp.port=" + env("MAILSTACK_SUBMISSION_PORT") +
             " pop3.port=" + env("MAILSTACK_POP3_PORT") +
             " tls.ca_file=" + q(env("MAILSTACK_CACERT")));
  // A terminal for sqlpost; each answer is typed once its prompt has been shown.
  const auto r = run_on_terminal({env("SQLPOST_BIN"), "run", db, "--once"},
                                 {{"smtp.host", "127.0.0.1"},
                                  {"pop3.host", "127.0.0.1"},
                                  {"pop3.user", "hq"},
                                  {"pop3.password", mail_passwords()["hq"]}});
  CHECK_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output.find("ok   pop3: mailbox") != std::string::npos);
  CHECK(r.output.find(mail_passwords()["hq"]) == std::string::npos);  // typed without echo
  const auto shown = run_sqlpost("config " + q(db));
  CHECK(shown.output.find("pop3.user=hq") != std::string::npos);
  CHECK(shown.output.find("pop3.password=********") != std::string::npos);
  CHECK(run_sqlpost("run " + q(db) + " --once </dev/null").exit_code == 0);
}

TEST_CASE(
    "first run: a wrong security setting and an untrusted certificate are asked for; a "
    "failed test keeps what was typed") {
  if (!mailstack_running()) {
    return;
  }
  drain("hq");
  TempDir dir;
  const std::string db = dir.path("first.db");
  const std::string ca = env("MAILSTACK_CACERT");
  sqlpost_ok("init " + q(db) + " --site hq --address hq@hq.test");
  // Implicit TLS on the submission port (a STARTTLS port), and no tls.ca_file.
  sqlpost_ok("config " + q(db) + " link=smtp smtp.security=tls smtp.port=" +
             env("MAILSTACK_SUBMISSION_PORT") + " pop3.port=" + env("MAILSTACK_POP3_PORT"));
  const auto failed = run_on_terminal({env("SQLPOST_BIN"), "run", db, "--once"},
                                      {{"smtp.host", "127.0.0.1"},
                                       {"pop3.host", "127.0.0.1"},
                                       {"pop3.user", "hq"},
                                       {"pop3.password", "Zk4-not-the-password"},
                                       {"smtp.security (", "starttls"},
                                       {"tls.ca_file", ca}});
  CHECK_MESSAGE(failed.exit_code == 3, failed.output);
  CHECK(failed.output.find("handshake failed") != std::string::npos);
  CHECK(failed.output.find("certificate is not trusted") != std::string::npos);
  CHECK(failed.output.find("FAIL") != std::string::npos);
  CHECK(failed.output.find("Zk4-not-the-password") == std::string::npos);
  CHECK(run_sqlpost("config " + q(db)).output.find("pop3.user=hq") == std::string::npos);
  // The next first run offers what was typed (Enter keeps it), but not the password.
  const auto stored = run_on_terminal({env("SQLPOST_BIN"), "run", db, "--once"},
                                      {{"smtp.host (", ""},
                                       {"pop3.host (", ""},
                                       {"pop3.user (", ""},
                                       {"pop3.password", mail_passwords()["hq"]},
                                       {"smtp.security (", ""},
                                       {"tls.ca_file (", ""}});
  CHECK_MESSAGE(stored.exit_code == 0, stored.output);
  CHECK(stored.output.find("[127.0.0.1]") != std::string::npos);
  CHECK(stored.output.find("[starttls]") != std::string::npos);
  CHECK(stored.output.find("[" + ca + "]") != std::string::npos);
  const auto shown = run_sqlpost("config " + q(db)).output;
  CHECK(shown.find("pop3.user=hq") != std::string::npos);
  CHECK(shown.find("tls.ca_file=" + ca) != std::string::npos);
  CHECK(shown.find("smtp.security=starttls") != std::string::npos);
  CHECK(run_sqlpost("run " + q(db) + " --once </dev/null").exit_code == 0);
}

TEST_CASE("sqlpost check names the failing step; missing settings are listed for cron") {
  if (!mailstack_running()) {
    return;
  }
  MailDeployment d;
  const auto good = run_sqlpost("check " + q(d.s1));
  CHECK_MESSAGE(good.exit_code == 0, good.output);
  CHECK(good.output.find("ok   imap: mailbox") != std::string::npos);

  REQUIRE(setenv("SQLPOST_TEST_SITE2_PASSWORD", "Xq9-not-it", 1) == 0);
  const auto bad = run_sqlpost("check " + q(d.s2));
  CHECK(bad.exit_code == 4);
  CHECK(bad.output.find("FAIL smtp: login") != std::string::npos);
  CHECK(bad.output.find("Xq9-not-it") == std::string::npos);  // never the password

  const std::string fresh = d.dir.path("fresh.db");
  sqlpost_ok("init " + q(fresh) + " --site solo --address solo@x.test");
  sqlpost_ok("config " + q(fresh) + " link=smtp");
  const auto cron = run_sqlpost("run " + q(fresh) + " --once </dev/null");
  CHECK(cron.exit_code == 3);
  CHECK(cron.output.find("smtp.host, pop3.host, pop3.user, pop3.password") != std::string::npos);
  CHECK(cron.output.find("--secret pop3.password") != std::string::npos);

  const auto refused = run_sqlpost("config " + q(fresh) + " smtp.password=hunter2");
  CHECK(refused.exit_code == 2);
  CHECK(refused.output.find("--secret") != std::string::npos);
  const auto shown = run_sqlpost("config " + q(d.s1));
  CHECK(shown.output.find("imap.password=********") != std::string::npos);
  CHECK(shown.output.find(mail_passwords()["site1"]) == std::string::npos);
}

TEST_SUITE_END();
