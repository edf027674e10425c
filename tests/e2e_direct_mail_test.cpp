// Direct send (smtp.mode=direct) end to end: a real DNS server (dnsmasq, started per
// test case by tools/dnsstack/start.sh on 127.0.0.1 and a high port, stopped by its
// pid file) serves MX and address records for the test domains, and the real Postfix
// of tools/mailstack (MAILSTACK_* in the environment; without them every test fails
// unless SQLPOST_SKIP_MAIL=1) is the receiving MX on its SMTP port. Its certificate
// names "localhost" and 127.0.0.1, so MX records point at "localhost" to pass
// verification, and at other names of 127.0.0.1 to fail it.
//
// The DNS zone (dnsmasq answers only for these; --local makes it authoritative for
// test. and localhost., so a missing record is NODATA or NXDOMAIN, never a refusal):
//   hq.test      MX 10 dead.hq.test (127.0.0.2: nothing listens) and MX 20 localhost
//   site1.test   MX 10 localhost
//   site2.test   no MX; A 127.0.0.1 (the domain is its own mail server, RFC 5321)
//   badcert.test MX 10 mx.badcert.test (127.0.0.1; the certificate does not name it)
//   down.test    MX 10 dead1.down.test (127.0.0.2), MX 20 dead2.down.test (127.0.0.3)
//   empty.test   exists (a TXT record) with no MX and no address
//   nomail.test  does not exist
//   nullmx.test  MX 0 "." (RFC 7505: accepts no mail)
//   probe.test   MX 10 localhost (the administrator who gets alert mail)
//   mx.elsewhere.example  A 127.0.0.1 (outside the zone: AAAA is refused)
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "platform/dns.h"
#include "tests/mail_support.h"
#include "tests/support.h"
#include "transport/curl_direct.h"
#include "transport/curl_pop3.h"

using namespace sqlpost;        // NOLINT(google-build-using-namespace)
using namespace sqlpost::test;  // NOLINT(google-build-using-namespace)

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

bool mailstack_running() {
  return mailstack_ready(!env("MAILSTACK_SMTP_URL").empty(), "MAILSTACK_SMTP_URL is");
}

std::string password_of(const std::string& login) {
  return mailstack_secrets("MAILSTACK_USERS")[login];
}

std::uint16_t mx_port() {
  return static_cast<std::uint16_t>(std::stoi(env("MAILSTACK_SMTP_PORT")));
}

// dnsmasq serving the zone above, for one test case.
class DnsServer {
 public:
  DnsServer() {
    const std::string script = env("SQLPOST_SOURCE_DIR") + "/tools/dnsstack/start.sh";
    const auto r = run_command(
        "bash " + q(script) + " " + q(dir_.path("dns")) +
        " --local=/test/ --local=/localhost/ --host-record=localhost,127.0.0.1"
        " --mx-host=hq.test,localhost,20 --mx-host=hq.test,dead.hq.test,10"
        " --host-record=dead.hq.test,127.0.0.2 --mx-host=site1.test,localhost,10"
        " --host-record=site2.test,127.0.0.1"
        " --mx-host=badcert.test,mx.badcert.test,10 --host-record=mx.badcert.test,127.0.0.1"
        " --mx-host=down.test,dead1.down.test,10 --mx-host=down.test,dead2.down.test,20"
        " --host-record=dead1.down.test,127.0.0.2 --host-record=dead2.down.test,127.0.0.3"
        " --txt-record=empty.test,nothing-here --host-record=mx.elsewhere.example,127.0.0.1"
        " --mx-host=nullmx.test,.,0 --mx-host=probe.test,localhost,10"
        " 2>&1");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    address_ = r.output.substr(0, r.output.find('\n'));
  }
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;
  ~DnsServer() {
    run_command("bash " + q(env("SQLPOST_SOURCE_DIR") + "/tools/dnsstack/stop.sh") + " " +
                q(dir_.path("dns")));
  }
  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] platform::DnsServer settings() const {
    auto parsed = platform::parse_dns_server(address_);
    REQUIRE(parsed.ok());
    return *parsed;
  }

 private:
  TempDir dir_;
  std::string address_;  // 127.0.0.1:PORT
};

transport::MailServer pop3_server(const std::string& user) {
  transport::MailServer server;
  server.host = "127.0.0.1";
  server.port = static_cast<std::uint16_t>(std::stoi(env("MAILSTACK_POP3_PORT")));
  server.user = user;
  server.password = password_of(user);
  server.ca_file = env("MAILSTACK_CACERT");
  return server;
}

std::size_t drain(const std::string& user) {
  auto link = transport::Pop3Link::open(pop3_server(user));
  REQUIRE(link.ok());
  auto refs = (*link)->list();
  REQUIRE_MESSAGE(refs.ok(), refs.error().message);
  for (const auto& ref : *refs) {
    REQUIRE((*link)->remove(ref).ok());
  }
  REQUIRE((*link)->close().ok());
  return refs->size();
}

// Polls (bounded: two minutes) until `user`'s mailbox holds a mail, then empties it.
void expect_delivered(const std::string& user) {
  for (int i = 0; i < 2400; ++i) {
    if (drain(user) > 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("no mail arrived for " << user);
}

// Polls (bounded: two minutes) until a mail in `user`'s mailbox contains `text`;
// every mail read is removed.
bool wait_for_text(const std::string& user, const std::string& text) {
  for (int i = 0; i < 2400; ++i) {
    auto link = transport::Pop3Link::open(pop3_server(user));
    REQUIRE(link.ok());
    auto refs = (*link)->list();
    REQUIRE(refs.ok());
    bool found = false;
    for (const auto& ref : *refs) {
      auto mail = (*link)->fetch(ref);
      REQUIRE(mail.ok());
      found = found || mail->find(text) != std::string::npos;
      REQUIRE((*link)->remove(ref).ok());
    }
    REQUIRE((*link)->close().ok());
    if (found) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

transport::DirectConfig direct_config(const DnsServer& dns) {
  transport::DirectConfig config;
  config.smtp.server.port = mx_port();
  config.smtp.server.ca_file = env("MAILSTACK_CACERT");
  config.smtp.server.connect_timeout = std::chrono::seconds(10);
  config.smtp.from_address = "probe@probe.test";
  config.smtp.helo_name = "direct.probe.test";
  config.dns = dns.settings();
  return config;
}

std::string test_mail(const std::string& to) {
  return "From: probe@probe.test\r\nTo: " + to +
         "\r\nSubject: direct send test\r\nDate: Mon, 7 Dec 2026 00:00:00 +0000\r\n"
         "Message-ID: <direct-test@probe.test>\r\n\r\nsent by MX\r\n";
}

Result<> send_direct(const DnsServer& dns, const std::string& to,
                     transport::MailSecurity security = transport::MailSecurity::kStartTls,
                     bool verify = true) {
  auto config = direct_config(dns);
  config.smtp.server.security = security;
  config.smtp.server.verify = verify;
  auto link = transport::DirectSmtpLink::open(config);
  REQUIRE_MESSAGE(link.ok(), link.error().message);
  return (*link)->send(to, test_mail(to));
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_SUITE_BEGIN("e2e-direct-mail");

TEST_CASE("the resolver reads MX records in preference order from a real DNS server") {
  if (!mailstack_running()) {
    return;
  }
  const DnsServer dns;
  auto resolver = platform::open_resolver(dns.settings());
  REQUIRE(resolver.ok());
  auto mx = (*resolver)->mx("hq.test");
  REQUIRE_MESSAGE(mx.ok(), mx.error().message);
  REQUIRE(mx->size() == 2);
  CHECK((*mx)[0].preference == 10);
  CHECK((*mx)[0].host == "dead.hq.test");
  CHECK((*mx)[1].host == "localhost");
  CHECK((*resolver)->mx("site2.test")->empty());  // exists, no MX
  const auto missing = (*resolver)->mx("nomail.test");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == Errc::kNotFound);
  CHECK(*(*resolver)->addresses("dead.hq.test") == std::vector<std::string>{"127.0.0.2"});
  CHECK((*resolver)->addresses("empty.test")->empty());
  // Outside the zone dnsmasq refuses AAAA (no upstream): the A record still counts.
  CHECK(*(*resolver)->addresses("mx.elsewhere.example") == std::vector<std::string>{"127.0.0.1"});
  CHECK((*resolver)->addresses("nothing.elsewhere.example").error().code == Errc::kTransient);
  CHECK((*resolver)->mx("bad name.test").error().code == Errc::kInvalidArgument);
}

TEST_CASE("the first MX refuses the connection: the mail goes to the second, over STARTTLS") {
  if (!mailstack_running()) {
    return;
  }
  const DnsServer dns;
  drain("hq");
  const auto sent = send_direct(dns, "hq@hq.test");
  REQUIRE_MESSAGE(sent.ok(), sent.error().message);
  expect_delivered("hq");
  // The same preference order as sqlpost check shows it: dead.hq.test first, then localhost.
  auto steps = transport::check_direct(direct_config(dns), "hq.test");
  REQUIRE(steps.ok());
  REQUIRE(steps->size() >= 3);
  CHECK((*steps)[0].detail ==
        "MX of hq.test in order: 10 dead.hq.test (127.0.0.2) 20 localhost "
        "(127.0.0.1)");
  CHECK((*steps)[1].name == "fallback");
  CHECK(has((*steps)[1].detail,
            "dead.hq.test (127.0.0.2:" + std::to_string(mx_port()) + ") failed at connect"));
  CHECK(steps->back().ok);
  CHECK(steps->back().name == "ready");
}

TEST_CASE("a domain without MX is its own mail server; its certificate is checked like an MX's") {
  if (!mailstack_running()) {
    return;
  }
  const DnsServer dns;
  drain("site2");
  const auto untrusted = send_direct(dns, "site2@site2.test");
  REQUIRE_FALSE(untrusted.ok());
  CHECK(untrusted.error().code == Errc::kConfig);  // TLS: not retried blindly
  CHECK_MESSAGE(
      has(untrusted.error().message, "MX site2.test (127.0.0.1:" + std::to_string(mx_port()) + ")"),
      untrusted.error().message);
  CHECK(has(untrusted.error().message, "certificate is not trusted"));
  const auto unverified =
      send_direct(dns, "site2@site2.test", transport::MailSecurity::kStartTls, false);
  REQUIRE_MESSAGE(unverified.ok(), unverified.error().message);
  expect_delivered("site2");
}

TEST_CASE(
    "per-domain failures name the cause: no domain, no MX, null MX, every MX down, TLS, 5xx") {
  if (!mailstack_running()) {
    return;
  }
  const DnsServer dns;
  const auto nxdomain = send_direct(dns, "someone@nomail.test");
  REQUIRE_FALSE(nxdomain.ok());
  CHECK(nxdomain.error().code == Errc::kPermanent);
  CHECK_MESSAGE(has(nxdomain.error().message,
                    "direct send to someone@nomail.test: the domain "
                    "nomail.test has no mail servers: DNS MX lookup of "
                    "nomail.test at " +
                        dns.address() + ": the name does not exist (NXDOMAIN)"),
                nxdomain.error().message);

  const auto empty = send_direct(dns, "someone@empty.test");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().code == Errc::kPermanent);
  CHECK(has(empty.error().message,
            "the domain empty.test has no MX record and no address (A/AAAA) at " + dns.address() +
                ": it receives no mail"));

  const auto null_mx = send_direct(dns, "someone@nullmx.test");
  REQUIRE_FALSE(null_mx.ok());
  CHECK(null_mx.error().code == Errc::kPermanent);
  CHECK_MESSAGE(
      has(null_mx.error().message,
          "the domain nullmx.test accepts no mail (null MX, RFC 7505, at " + dns.address() + ")"),
      null_mx.error().message);

  const auto down = send_direct(dns, "someone@down.test");
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().code == Errc::kTransient);
  const std::string port = std::to_string(mx_port());
  CHECK_MESSAGE(has(down.error().message, "no mail server of down.test took the mail (2 tried)"),
                down.error().message);
  CHECK(has(down.error().message, "MX dead1.down.test (127.0.0.2:" + port + "): "));
  CHECK(has(down.error().message, "MX dead2.down.test (127.0.0.3:" + port + "): "));
  CHECK(has(down.error().message, "cannot connect"));

  const auto badcert = send_direct(dns, "hq@badcert.test");
  REQUIRE_FALSE(badcert.ok());
  CHECK(badcert.error().code == Errc::kConfig);
  CHECK(has(badcert.error().message, "MX mx.badcert.test (127.0.0.1:" + port + ")"));
  CHECK(has(badcert.error().message, "certificate is not trusted"));

  const auto unknown = send_direct(dns, "nobody@hq.test");  // Postfix: 550 unknown user
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Errc::kPermanent);
  CHECK(has(unknown.error().message, "MX localhost (127.0.0.1:" + port + ")"));
  CHECK(has(unknown.error().message, "550"));
}

namespace {

// A hub and one remote that both send by direct send and read by POP3.
struct DirectDeployment {
  DnsServer dns;
  TempDir dir;
  std::string hub = dir.path("hq.db");
  std::string s1 = dir.path("site1.db");

  DirectDeployment() {
    drain("hq");
    drain("site1");
    sqlite_shell(hub,
                 "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT, "
                 "photo BLOB); INSERT INTO customer VALUES (1, 'Ada', 'east', x'00ff');");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    configure(hub, "hq");
    sqlpost_ok("publish " + q(hub) + " sales customer");
    sqlpost_ok("site add " + q(hub) + " site1 --address site1@site1.test");
    sqlpost_ok("subscribe " + q(hub) + " site1 sales");
    sqlpost_ok("extract " + q(hub) + " site1 --output " + q(s1));
    configure(s1, "site1");
  }

  void configure(const std::string& db, const std::string& user) {
    const std::string file = dir.path(user + ".password");
    std::ofstream(file) << password_of(user) << "\n";
    REQUIRE(chmod(file.c_str(), 0600) == 0);
    sqlpost_ok("config " + q(db) + " link=smtp smtp.mode=direct smtp.dns_server=" + dns.address() +
               " smtp.mx_port=" + std::to_string(mx_port()) +
               " pop3.host=127.0.0.1 pop3.port=" + env("MAILSTACK_POP3_PORT") +
               " pop3.user=" + user + " pop3.password_file=" + q(file) +
               " tls.ca_file=" + q(env("MAILSTACK_CACERT")) + " timeout=10");
  }

  // Rounds (bounded: 400) with short pauses until both sites have nothing left to do.
  void run_until_quiet() {
    for (int i = 0; i < 400; ++i) {
      for (const auto& db : {hub, s1}) {
        const auto r = run_sqlpost("run " + q(db) + " --once");
        CHECK_MESSAGE(r.exit_code == 0, db << "\n" << r.output);
      }
      if (site_quiet(hub) && site_quiet(s1)) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    FAIL("the sites did not become quiet in 400 rounds");
  }
};

}  // namespace

TEST_CASE("hub -> remote -> hub replicate through direct send to the MX; rows compared") {
  if (!mailstack_running()) {
    return;
  }
  DirectDeployment d;
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (2, 'from the hub', 'west', randomblob(3000));");
  sqlite_shell(d.s1,
               "INSERT INTO customer VALUES (100, 'from site1', 'north', NULL);"
               "UPDATE customer SET region = 'south' WHERE id = 1;");
  d.run_until_quiet();
  sqlite_shell(d.s1, "UPDATE customer SET name = 'changed at site1' WHERE id = 2;");
  d.run_until_quiet();
  Database h = open_db(d.hub);
  Database r = open_db(d.s1);
  CHECK(compare_tables(h, r, "customer").empty());
  CHECK(query_int(h, "SELECT count(*) FROM customer") == 3);
  CHECK(query_int(h, "SELECT count(*) FROM customer WHERE name = 'changed at site1'") == 1);
  for (const auto& path : {d.hub, d.s1}) {
    CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
  }
}

TEST_CASE(
    "a partner whose domain has no mail server is reported, alert mail goes direct, the others "
    "converge") {
  if (!mailstack_running()) {
    return;
  }
  DirectDeployment d;
  sqlpost_ok("site add " + q(d.hub) + " lost --address lost@nomail.test");
  sqlpost_ok("subscribe " + q(d.hub) + " lost sales");
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (300, 'for everyone', NULL, NULL);");
  const auto refused = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(refused.exit_code == 4);
  CHECK_MESSAGE(has(refused.output, "refused message 1 part 1 to lost"), refused.output);
  CHECK(has(refused.output,
            "direct send to lost@nomail.test: the domain nomail.test has no mail "
            "servers: DNS MX lookup of nomail.test at " +
                d.dns.address() + ": the name does not exist (NXDOMAIN)"));
  // The administrator is told by alert mail, which goes by direct send as well.
  drain("probe");
  sqlpost_ok("config " + q(d.hub) + " alert.mailto=probe@probe.test");
  sqlite_shell(d.hub,
               "UPDATE sqlpost_outbox SET created_at = created_at - 172800 "
               "WHERE site = 'lost';");
  const auto alerted = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK_FALSE_MESSAGE(has(alerted.output, "alert mail"), alerted.output);  // no mailing problem
  CHECK(wait_for_text("probe", "Subject: sqlpost hq: alert raised unacknowledged (lost)"));
  sqlpost_ok("config " + q(d.hub) + " alert.mailto=");
  sqlpost_ok("unsubscribe " + q(d.hub) + " lost sales");
  sqlpost_ok("site remove " + q(d.hub) + " lost");
  d.run_until_quiet();
  Database h = open_db(d.hub);
  Database r = open_db(d.s1);
  CHECK(compare_tables(h, r, "customer").empty());
  CHECK(query_int(r, "SELECT count(*) FROM customer WHERE id = 300") == 1);
}

TEST_CASE("sqlpost check shows the direct mode, each partner domain's MX route and its failures") {
  if (!mailstack_running()) {
    return;
  }
  DirectDeployment d;
  const auto hub = run_sqlpost("check " + q(d.hub));
  CHECK_MESSAGE(hub.exit_code == 0, hub.output);
  CHECK_MESSAGE(has(hub.output,
                    "ok   smtp: mode - direct: each mail goes to its recipient "
                    "domain's MX servers, port " +
                        std::to_string(mx_port()) + ", DNS " + d.dns.address()),
                hub.output);
  CHECK(has(hub.output, "ok   smtp site1.test: MX - MX of site1.test in order: 10 localhost"));
  CHECK(has(hub.output, "ok   smtp site1.test: STARTTLS"));
  CHECK(has(hub.output, "ok   pop3: mailbox"));
  CHECK_FALSE(has(hub.output, "smtp site1.test: login"));  // never AUTH at an MX

  const auto remote = run_sqlpost("check " + q(d.s1));
  CHECK_MESSAGE(remote.exit_code == 0, remote.output);
  CHECK(has(remote.output, "ok   smtp hq.test: fallback - MX dead.hq.test (127.0.0.2:"));

  sqlpost_ok("site add " + q(d.hub) + " lost --address lost@nomail.test");
  const auto broken = run_sqlpost("check " + q(d.hub));
  CHECK(broken.exit_code == 4);
  CHECK_MESSAGE(has(broken.output,
                    "FAIL smtp nomail.test: MX - the domain nomail.test has no "
                    "mail servers"),
                broken.output);
  CHECK(has(broken.output, "what to try: check the partner's address, smtp.dns_server"));
  CHECK(has(broken.output, "a step failed"));
}

TEST_CASE("direct-send settings are checked when set") {
  TempDir dir;
  const std::string db = dir.path("solo.db");
  sqlpost_ok("init " + q(db) + " --site solo --address solo@x.test");
  CHECK(run_sqlpost("config " + q(db) + " smtp.mode=mx").exit_code == 2);
  CHECK(run_sqlpost("config " + q(db) + " smtp.dns_server=localhost").exit_code == 2);
  CHECK(run_sqlpost("config " + q(db) + " smtp.dns_server=127.0.0.1:0").exit_code == 2);
  CHECK(run_sqlpost("config " + q(db) + " smtp.mx_port=70000").exit_code == 2);
  sqlpost_ok("config " + q(db) + " link=smtp smtp.mode=direct smtp.dns_server=127.0.0.1:5353");
  const auto cron = run_sqlpost("run " + q(db) + " --once </dev/null");
  CHECK(cron.exit_code == 3);
  CHECK_MESSAGE(has(cron.output, "control parameters missing: pop3.host"), cron.output);
  CHECK_FALSE(has(cron.output, "smtp.host"));  // not needed in direct mode
  // POP-before-SMTP is a relay's rule: refused with direct send, before any connection.
  REQUIRE(setenv("SQLPOST_TEST_SOLO_PASSWORD", "x", 1) == 0);
  sqlpost_ok("config " + q(db) +
             " pop3.host=127.0.0.1 pop3.user=solo pop3.password_env=SQLPOST_TEST_SOLO_PASSWORD "
             "smtp.pop_before_smtp=yes");
  const auto gated = run_sqlpost("run " + q(db) + " --once </dev/null");
  CHECK(gated.exit_code == 3);
  CHECK_MESSAGE(has(gated.output, "smtp.pop_before_smtp=yes needs the provider's SMTP relay"),
                gated.output);
}

TEST_SUITE_END();
