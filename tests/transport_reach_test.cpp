// POP-before-SMTP ordering and the login errors that name their cause, against tiny
// scripted servers on 127.0.0.1 (tests/mail_reach_support.h): they answer the way a
// provider's server may and Postfix + Dovecot of tools/mailstack do not (POP3
// [LOGIN-DELAY], mechanism lists of the test's choosing), and they log every command
// in protocol order, across the POP3/IMAP and SMTP servers alike. No mail stack and no
// sleeps: each server listens before the client connects.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/mail_reach_support.h"
#include "transport/mail_links.h"

using namespace sqlpost;             // NOLINT(google-build-using-namespace)
using namespace sqlpost::test;       // NOLINT(google-build-using-namespace)
using namespace sqlpost::transport;  // NOLINT(google-build-using-namespace)

namespace {

bool starts(const std::string& line, const char* word) { return line.rfind(word, 0) == 0; }

struct Pop3Script {
  std::string capa = "USER\nUIDL";
  std::string pass_reply = "+OK logged in";
};

ScriptedServer::Reply pop3_script(Pop3Script script) {
  return [script = std::move(script)](ScriptTurn& t) -> std::string {
    if (t.line == "CAPA") return "+OK\n" + script.capa + "\n.";
    if (starts(t.line, "USER")) return "+OK";
    if (starts(t.line, "PASS") || starts(t.line, "APOP")) return script.pass_reply;
    if (t.line == "UIDL" || t.line == "LIST") return "+OK\n.";
    if (t.line == "QUIT") {
      t.close = true;
      return "+OK bye";
    }
    return "+OK";  // NOOP, STAT
  };
}

struct SmtpScript {
  std::string auth_line = "250 AUTH PLAIN LOGIN";
  std::string auth_reply = "235 2.7.0 Authentication successful";
};

ScriptedServer::Reply smtp_script(SmtpScript script) {
  return [script = std::move(script)](ScriptTurn& t) -> std::string {
    if (t.in_data) {
      if (t.line == ".") {
        t.in_data = false;
        return "250 2.0.0 queued";
      }
      return "";
    }
    if (starts(t.line, "EHLO")) return "250-fake.test\n" + script.auth_line;
    if (starts(t.line, "AUTH")) {
      const bool initial_response = t.line.find(' ', 5) != std::string::npos;
      return initial_response ? script.auth_reply : "334 ";
    }
    if (starts(t.line, "MAIL") || starts(t.line, "RCPT") || starts(t.line, "NOOP") ||
        starts(t.line, "RSET")) {
      return "250 2.1.0 Ok";
    }
    if (starts(t.line, "DATA")) {
      t.in_data = true;
      return "354 End data with <CR><LF>.<CR><LF>";
    }
    if (starts(t.line, "QUIT")) {
      t.close = true;
      return "221 2.0.0 Bye";
    }
    return script.auth_reply;  // the SASL response after "334"
  };
}

ScriptedServer::Reply imap_script(std::string capabilities) {
  return [capabilities = std::move(capabilities)](ScriptTurn& t) -> std::string {
    const std::string tag = t.line.substr(0, t.line.find(' '));
    const std::string command = t.line.substr(tag.size() + 1);
    if (starts(command, "CAPABILITY")) {
      return "* CAPABILITY IMAP4rev1 " + capabilities + "\n" + tag + " OK done";
    }
    if (starts(command, "LOGOUT")) {
      t.close = true;
      return "* BYE\n" + tag + " OK bye";
    }
    if (starts(command, "AUTHENTICATE")) {
      return tag + " NO [AUTHENTICATIONFAILED] failed";
    }
    return tag + " OK done";  // LOGIN, NOOP
  };
}

MailServer plain_server(std::uint16_t port) {
  MailServer server;
  server.host = "127.0.0.1";
  server.port = port;
  server.security = MailSecurity::kNone;
  server.user = "site";
  server.password = "secret";
  server.connect_timeout = std::chrono::seconds(20);
  server.response_timeout = std::chrono::seconds(20);
  server.timeout = std::chrono::seconds(60);
  return server;
}

MailLinkConfig link_config(std::uint16_t smtp_port, std::uint16_t inbox_port,
                           InboxProtocol inbox = InboxProtocol::kPop3) {
  MailLinkConfig config;
  config.smtp.server = plain_server(smtp_port);
  config.smtp.from_address = "site@example.test";
  config.smtp.helo_name = "site.example.test";
  config.inbox = inbox;
  config.inbox_server = plain_server(inbox_port);
  return config;
}

const char* const kMail = "From: <site@example.test>\nTo: <hq@example.test>\nSubject: x\n\nhi\n";

// A sending link that logs what it is asked to do.
class RecordingLink final : public Link {
 public:
  explicit RecordingLink(EventLog& log) : log_(log) {}
  Result<> send(std::string_view to, std::string_view /*mail*/) override {
    log_.add("send " + std::string(to));
    return success();
  }
  Result<std::vector<MailRef>> list() override { return make_error(Errc::kUnsupported, "no"); }
  Result<std::string> fetch(const MailRef& /*ref*/) override {
    return make_error(Errc::kUnsupported, "no");
  }
  Result<> remove(const MailRef& /*ref*/) override { return make_error(Errc::kUnsupported, "no"); }

 private:
  EventLog& log_;
};

void require_no_mail_read(const EventLog& log, const char* inbox) {
  for (const char* command : {"UIDL", "LIST", "RETR", "STAT", "TOP", "DELE"}) {
    CHECK_MESSAGE(log.count(std::string(inbox) + " " + command) == 0, command);
  }
}

}  // namespace

TEST_SUITE_BEGIN("transport-reach");

TEST_CASE("PopBeforeSmtpLink: the login comes first and once; a failed login sends nothing") {
  EventLog log;
  PopBeforeSmtpLink ok(std::make_unique<RecordingLink>(log), [&log] {
    log.add("login");
    return success();
  });
  REQUIRE(ok.send("a@x.test", "mail").ok());
  REQUIRE(ok.send("b@x.test", "mail").ok());
  CHECK(log.events() == std::vector<std::string>{"login", "send a@x.test", "send b@x.test"});

  EventLog failed_log;
  PopBeforeSmtpLink failing(std::make_unique<RecordingLink>(failed_log), [&failed_log] {
    failed_log.add("login");
    return Result<>(make_error(Errc::kConfig, "wrong user name or password"));
  });
  for (int i = 0; i < 2; ++i) {
    auto sent = failing.send("a@x.test", "mail");
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().code == Errc::kConfig);
    CHECK(sent.error().message.find("POP-before-SMTP") != std::string::npos);
    CHECK(sent.error().message.find("wrong user name or password") != std::string::npos);
  }
  CHECK(failed_log.events() == std::vector<std::string>{"login"});  // tried once, sent nothing

  EventLog told_log;
  PopBeforeSmtpLink told(std::make_unique<RecordingLink>(told_log), [&told_log] {
    told_log.add("login");
    return success();
  });
  told.logged_in();  // the run read the mailbox already
  REQUIRE(told.send("a@x.test", "mail").ok());
  CHECK(told_log.events() == std::vector<std::string>{"send a@x.test"});
}

TEST_CASE("pop_before_smtp: a POP3 login (nothing fetched) before the SMTP connection") {
  EventLog log;
  ScriptedServer pop3("pop3", log, "+OK fake POP3 ready", pop3_script({}));
  ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script({}));
  MailLinkConfig config = link_config(smtp.port(), pop3.port());
  config.pop_before_smtp = true;
  auto link = open_outgoing_link(config);
  REQUIRE(link.ok());
  auto first = (*link)->send("hq@example.test", kMail);
  REQUIRE_MESSAGE(first.ok(), first.error().message);
  auto second = (*link)->send("hq@example.test", kMail);
  REQUIRE_MESSAGE(second.ok(), second.error().message);
  link->reset();  // QUIT to the SMTP server

  const long pass = log.first("pop3 PASS");
  const long quit = log.first("pop3 QUIT");
  const long connect = log.first("smtp connect");
  REQUIRE(pass >= 0);
  REQUIRE(connect >= 0);
  CHECK(pass < quit);
  CHECK(quit < connect);                  // the POP3 session ended before SMTP was contacted
  CHECK(log.count("pop3 connect") == 1);  // once for both mails
  CHECK(log.count("smtp RCPT") == 2);
  require_no_mail_read(log, "pop3");
}

TEST_CASE("pop_before_smtp with an IMAP mailbox: LOGIN, NOOP, LOGOUT, then SMTP") {
  EventLog log;
  ScriptedServer imap("imap", log, "* OK fake IMAP ready", imap_script("IDLE"));
  ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script({}));
  MailLinkConfig config = link_config(smtp.port(), imap.port(), InboxProtocol::kImap);
  config.pop_before_smtp = true;
  auto link = MailLink::open(config);
  REQUIRE(link.ok());
  auto sent = (*link)->send("hq@example.test", kMail);
  REQUIRE_MESSAGE(sent.ok(), sent.error().message);
  const auto events = log.events();
  long logged_out = -1;
  long login = -1;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].find(" LOGOUT") != std::string::npos) logged_out = static_cast<long>(i);
    if (events[i].find(" AUTHENTICATE") != std::string::npos ||
        events[i].find(" LOGIN") != std::string::npos) {
      login = static_cast<long>(i);
    }
  }
  REQUIRE(login >= 0);
  REQUIRE(logged_out >= 0);
  CHECK(login < logged_out);
  CHECK(logged_out < log.first("smtp connect"));
  for (const auto& event : events) {
    CHECK_MESSAGE(event.find("SELECT") == std::string::npos, event);
    CHECK_MESSAGE(event.find("FETCH") == std::string::npos, event);
  }
}

TEST_CASE("without pop_before_smtp a send does not touch the mailbox") {
  EventLog log;
  ScriptedServer pop3("pop3", log, "+OK fake POP3 ready", pop3_script({}));
  ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script({}));
  auto link = MailLink::open(link_config(smtp.port(), pop3.port()));
  REQUIRE(link.ok());
  auto sent = (*link)->send("hq@example.test", kMail);
  REQUIRE_MESSAGE(sent.ok(), sent.error().message);
  CHECK(log.count("pop3") == 0);
  CHECK(log.count("smtp RCPT") == 1);
}

TEST_CASE("pop_before_smtp: a run that has read the mailbox does not log in again") {
  EventLog log;
  ScriptedServer pop3("pop3", log, "+OK fake POP3 ready", pop3_script({}));
  ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script({}));
  MailLinkConfig config = link_config(smtp.port(), pop3.port());
  config.pop_before_smtp = true;
  auto link = MailLink::open(config);
  REQUIRE(link.ok());
  auto listed = (*link)->list();
  REQUIRE_MESSAGE(listed.ok(), listed.error().message);
  CHECK(listed->empty());
  auto sent = (*link)->send("hq@example.test", kMail);
  REQUIRE_MESSAGE(sent.ok(), sent.error().message);
  CHECK(log.count("pop3 PASS") == 1);  // the receive half's login only
  CHECK(log.first("pop3 PASS") < log.first("smtp connect"));
}

TEST_CASE("pop_before_smtp: a refused mailbox login means no SMTP connection at all") {
  EventLog log;
  Pop3Script refusing;
  refusing.pass_reply = "-ERR [AUTH] Authentication failed.";
  ScriptedServer pop3("pop3", log, "+OK fake POP3 ready", pop3_script(refusing));
  ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script({}));
  MailLinkConfig config = link_config(smtp.port(), pop3.port());
  config.pop_before_smtp = true;
  auto link = MailLink::open(config);
  REQUIRE(link.ok());
  for (int i = 0; i < 2; ++i) {
    auto sent = (*link)->send("hq@example.test", kMail);
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().code == Errc::kConfig);
    CHECK_MESSAGE(sent.error().message.find("POP-before-SMTP") != std::string::npos,
                  sent.error().message);
    CHECK_MESSAGE(sent.error().message.find("wrong user name or password") != std::string::npos,
                  sent.error().message);
  }
  CHECK(log.count("pop3 PASS") == 1);
  CHECK(log.count("smtp") == 0);
}

TEST_CASE("POP3 [LOGIN-DELAY] is a login delay, not a wrong password") {
  EventLog log;
  Pop3Script delayed;
  delayed.capa = "USER\nUIDL\nRESP-CODES\nLOGIN-DELAY 900";
  delayed.pass_reply = "-ERR [LOGIN-DELAY] Wait 15 minutes between logins";
  ScriptedServer pop3("pop3", log, "+OK fake POP3 ready", pop3_script(delayed));
  auto link = Pop3Link::open(plain_server(pop3.port()));
  REQUIRE(link.ok());
  auto listed = (*link)->list();
  REQUIRE_FALSE(listed.ok());
  const std::string& message = listed.error().message;
  CHECK(listed.error().code == Errc::kTransient);
  CHECK_MESSAGE(message.find("login delay: the server allows a login only every 900 seconds (15 "
                             "minutes)") != std::string::npos,
                message);
  CHECK_MESSAGE(message.find("-ERR [LOGIN-DELAY] Wait 15 minutes") != std::string::npos, message);
  CHECK(message.find("wrong user name") == std::string::npos);

  auto steps = check_pop3(plain_server(pop3.port()));
  REQUIRE(steps.ok());
  REQUIRE_FALSE(steps->empty());
  CHECK(steps->back().name == "login");
  CHECK_FALSE(steps->back().ok);
  CHECK_MESSAGE(
      steps->back().detail.rfind("login delay: the server allows a login only every 900", 0) == 0,
      steps->back().detail);

  SUBCASE("without LOGIN-DELAY in CAPA the delay is still named") {
    EventLog quiet_log;
    Pop3Script unsaid;
    unsaid.pass_reply = "-ERR [LOGIN-DELAY] too soon";
    ScriptedServer quiet("pop3", quiet_log, "+OK ready", pop3_script(unsaid));
    auto other = Pop3Link::open(plain_server(quiet.port()));
    REQUIRE(other.ok());
    auto refused = (*other)->list();
    REQUIRE_FALSE(refused.ok());
    CHECK_MESSAGE(refused.error().message.find("login delay: the server allows a login only "
                                               "every so often") != std::string::npos,
                  refused.error().message);
  }
}

TEST_CASE("check: an APOP login (timestamp in the greeting) counts as the login step") {
  EventLog log;
  ScriptedServer pop3("pop3", log, "+OK POP3 Ready <4711.1796615270@mail.test>", pop3_script({}));
  auto steps = check_pop3(plain_server(pop3.port()));
  REQUIRE(steps.ok());
  REQUIRE_FALSE(steps->empty());
  for (const auto& step : *steps) {
    CHECK_MESSAGE(step.ok, step.name << ": " << step.detail);
  }
  CHECK(steps->back().name == "mailbox");
  CHECK(log.count("pop3 APOP site ") == 1);  // GNU Mailutils' pop3d greets like this
}

TEST_CASE("POP3 [IN-USE] and a plain -ERR: in use, and a wrong password") {
  EventLog log;
  Pop3Script in_use;
  in_use.pass_reply = "-ERR [IN-USE] Mailbox locked by another session";
  ScriptedServer locked("pop3", log, "+OK ready", pop3_script(in_use));
  auto link = Pop3Link::open(plain_server(locked.port()));
  REQUIRE(link.ok());
  auto listed = (*link)->list();
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().code == Errc::kTransient);
  CHECK_MESSAGE(listed.error().message.find("in use by another session") != std::string::npos,
                listed.error().message);

  Pop3Script wrong;
  wrong.pass_reply = "-ERR [AUTH] Authentication failed.";
  ScriptedServer refusing("pop3", log, "+OK ready", pop3_script(wrong));
  auto other = Pop3Link::open(plain_server(refusing.port()));
  REQUIRE(other.ok());
  auto denied = (*other)->list();
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().code == Errc::kConfig);
  CHECK_MESSAGE(denied.error().message.find("wrong user name or password") != std::string::npos,
                denied.error().message);
}

TEST_CASE("a chosen SASL mechanism the server does not offer is named (SMTP, POP3, IMAP)") {
  EventLog log;
  SUBCASE("SMTP") {
    ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script({}));
    MailLinkConfig config = link_config(smtp.port(), 1);
    config.smtp.server.auth = "CRAM-MD5";
    auto link = open_outgoing_link(config);
    REQUIRE(link.ok());
    auto sent = (*link)->send("hq@example.test", kMail);
    REQUIRE_FALSE(sent.ok());
    CHECK(sent.error().code == Errc::kConfig);
    CHECK_MESSAGE(sent.error().message.find("the server offers AUTH PLAIN LOGIN, not CRAM-MD5") !=
                      std::string::npos,
                  sent.error().message);
    CHECK(log.count("smtp AUTH") == 0);
    link->reset();  // its connection ends: the server serves one at a time
    auto steps = check_smtp(config.smtp);
    REQUIRE(steps.ok());
    CHECK(steps->back().name == "login");
    CHECK_MESSAGE(
        steps->back().detail.rfind("the server offers AUTH PLAIN LOGIN, not CRAM-MD5", 0) == 0,
        steps->back().detail);
  }
  SUBCASE("SMTP: an offered mechanism that is refused is a wrong password") {
    SmtpScript refusing;
    refusing.auth_reply = "535 5.7.8 Error: authentication failed";
    ScriptedServer smtp("smtp", log, "220 fake.test ESMTP", smtp_script(refusing));
    MailLinkConfig config = link_config(smtp.port(), 1);
    config.smtp.server.auth = "PLAIN";
    auto link = open_outgoing_link(config);
    REQUIRE(link.ok());
    auto sent = (*link)->send("hq@example.test", kMail);
    REQUIRE_FALSE(sent.ok());
    CHECK_MESSAGE(sent.error().message.find("wrong user name or password") != std::string::npos,
                  sent.error().message);
    CHECK(sent.error().message.find("offers") == std::string::npos);
  }
  SUBCASE("POP3") {
    Pop3Script sasl;
    sasl.capa = "USER\nUIDL\nSASL PLAIN LOGIN";
    ScriptedServer pop3("pop3", log, "+OK ready", pop3_script(sasl));
    MailServer server = plain_server(pop3.port());
    server.auth = "CRAM-MD5";
    auto link = Pop3Link::open(server);
    REQUIRE(link.ok());
    auto listed = (*link)->list();
    REQUIRE_FALSE(listed.ok());
    CHECK(listed.error().code == Errc::kConfig);
    CHECK_MESSAGE(listed.error().message.find("the server offers AUTH PLAIN LOGIN, not CRAM-MD5") !=
                      std::string::npos,
                  listed.error().message);
  }
  SUBCASE("POP3 without any SASL mechanism") {
    ScriptedServer pop3("pop3", log, "+OK ready", pop3_script({}));
    MailServer server = plain_server(pop3.port());
    server.auth = "PLAIN";
    auto link = Pop3Link::open(server);
    REQUIRE(link.ok());
    auto listed = (*link)->list();
    REQUIRE_FALSE(listed.ok());
    CHECK_MESSAGE(listed.error().message.find("the server offers no SASL mechanism, not PLAIN") !=
                      std::string::npos,
                  listed.error().message);
  }
  SUBCASE("IMAP") {
    ScriptedServer imap("imap", log, "* OK fake IMAP ready",
                        imap_script("AUTH=SCRAM-SHA-256 AUTH=PLAIN LOGINDISABLED"));
    MailServer server = plain_server(imap.port());
    server.auth = "LOGIN";
    auto link = ImapLink::open(ImapConfig{server, "INBOX"});
    REQUIRE(link.ok());
    auto listed = (*link)->list();
    REQUIRE_FALSE(listed.ok());
    CHECK(listed.error().code == Errc::kConfig);
    CHECK_MESSAGE(listed.error().message.find(
                      "the server offers AUTH SCRAM-SHA-256 PLAIN, not LOGIN") != std::string::npos,
                  listed.error().message);
  }
}

TEST_CASE("an IMAP server offering only SCRAM (and LOGINDISABLED) is named, not the password") {
  EventLog log;
  ScriptedServer imap("imap", log, "* OK fake IMAP ready",
                      imap_script("AUTH=SCRAM-SHA-256 LOGINDISABLED"));
  auto link = ImapLink::open(ImapConfig{plain_server(imap.port()), "INBOX"});
  REQUIRE(link.ok());
  auto listed = (*link)->list();
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().code == Errc::kConfig);
  CHECK_MESSAGE(
      listed.error().message.find("the server offers AUTH SCRAM-SHA-256 only") != std::string::npos,
      listed.error().message);
  CHECK(listed.error().message.find("wrong user name") == std::string::npos);
  CHECK(log.count("imap A") > 0);
  for (const auto& event : log.events()) {  // the password never went out
    CHECK_MESSAGE(event.find(" LOGIN") == std::string::npos, event);
    CHECK_MESSAGE(event.find("AUTHENTICATE") == std::string::npos, event);
  }
}

TEST_CASE("offered_mechanisms reads EHLO, CAPA and CAPABILITY; the last list counts") {
  CHECK(offered_mechanisms("220 x\r\n250-x\r\n250-PIPELINING\r\n250 8BITMIME\r\n") == std::nullopt);
  CHECK(offered_mechanisms("250-x\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n") ==
        std::vector<std::string>{"PLAIN", "LOGIN"});
  CHECK(offered_mechanisms("250-AUTH=login\r\n250 AUTH PLAIN\r\n") ==
        std::vector<std::string>{"PLAIN"});
  CHECK(offered_mechanisms("+OK\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN CRAM-MD5\r\n.\r\n") ==
        std::vector<std::string>{"PLAIN", "CRAM-MD5"});
  CHECK(offered_mechanisms("+OK\r\nUSER\r\n.\r\n") == std::vector<std::string>{});
  CHECK(offered_mechanisms("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n"
                           "* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=xoauth2\r\nA1 OK\r\n") ==
        std::vector<std::string>{"PLAIN", "XOAUTH2"});
  CHECK(offered_mechanisms("A2 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Logged in\r\n") ==
        std::vector<std::string>{"PLAIN"});
}

TEST_SUITE_END();
