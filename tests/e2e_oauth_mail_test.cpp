// OAuth2 bearer tokens end to end: the sqlpost program against the real Postfix +
// Dovecot of tools/mailstack, whose MAILSTACK_OAUTH_USERS (ohub, orem) log in only
// with XOAUTH2/OAUTHBEARER tokens that Dovecot checks at the stack's local RFC 7662
// endpoint (oauth_introspect.py). Postfix's SMTP AUTH goes through the same Dovecot.
// Each site gets its token from `*.oauth2_token_command` (a command reading a 0600
// file). Checked: a full replication round both ways (POP3 hub, IMAP remote, SMTP
// for both) with the rows compared; a refused token and a failing token command give
// a configuration exit code and a message naming the cause; `sqlpost check` says a
// token was used; the token text never shows in any output or log.
// Without MAILSTACK_* in the environment every test fails unless SQLPOST_SKIP_MAIL=1.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tests/mail_support.h"
#include "tests/support.h"
#include "transport/mail_links.h"

using namespace sqlpost;        // NOLINT(google-build-using-namespace)
using namespace sqlpost::test;  // NOLINT(google-build-using-namespace)

namespace {

constexpr int kExitConfig = 3;  // agent/exit_codes.h

std::string q(const std::string& s) { return shell_quote(s); }

// login -> token, from MAILSTACK_OAUTH_USERS.
std::map<std::string, std::string> oauth_tokens() {
  return mailstack_secrets("MAILSTACK_OAUTH_USERS");
}

bool oauth_stack_running() {
  return mailstack_ready(!env("MAILSTACK_OAUTH_PORT").empty() &&
                             oauth_tokens().count("ohub") == 1 && oauth_tokens().count("orem") == 1,
                         "MAILSTACK_OAUTH_PORT/MAILSTACK_OAUTH_USERS (ohub, orem) are");
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

transport::MailServer pop3_with_token(const std::string& user) {
  transport::MailServer server;
  server.host = "127.0.0.1";
  server.port = static_cast<std::uint16_t>(std::stoi(env("MAILSTACK_POP3_PORT")));
  server.user = user;
  server.bearer = oauth_tokens()[user];
  server.ca_file = env("MAILSTACK_CACERT");
  return server;
}

// Empties an OAuth2 test mailbox (itself through POP3 with a bearer token).
void drain(const std::string& user) {
  auto link = transport::Pop3Link::open(pop3_with_token(user));
  REQUIRE(link.ok());
  auto refs = (*link)->list();
  REQUIRE_MESSAGE(refs.ok(), refs.error().message);
  for (const auto& ref : *refs) {
    REQUIRE((*link)->remove(ref).ok());
  }
  REQUIRE((*link)->close().ok());
}

// The hub "ohub" (POP3; SMTP with the POP3 account's token) and the remote "orem"
// (IMAP with imap.auth=XOAUTH2; SMTP with its own command and smtp.auth=OAUTHBEARER).
struct OAuthDeployment {
  TempDir dir;
  std::string hub = dir.path("ohub.db");
  std::string remote = dir.path("orem.db");
  std::string log = dir.path("agent.log");
  std::string all_output;  // every run's output, searched for the tokens

  OAuthDeployment() {
    drain("ohub");
    drain("orem");
    sqlite_shell(hub,
                 "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER);"
                 "INSERT INTO item VALUES (1, 'anchor', 3), (2, 'buoy', NULL);");
    sqlpost_ok("init " + q(hub) + " --site ohub --address ohub@ohub.test");
    sqlpost_ok("config " + q(hub) +
               " link=smtp smtp.host=127.0.0.1 smtp.port=" + env("MAILSTACK_SUBMISSION_PORT") +
               " pop3.host=127.0.0.1 pop3.port=" + env("MAILSTACK_POP3_PORT") +
               " pop3.user=ohub tls.ca_file=" + q(env("MAILSTACK_CACERT")) + " timeout=10");
    set_token_command(hub, "pop3", token_command("ohub", oauth_tokens()["ohub"]));
    sqlpost_ok("publish " + q(hub) + " fleet item");
    sqlpost_ok("site add " + q(hub) + " orem --address orem@orem.test");
    sqlpost_ok("subscribe " + q(hub) + " orem fleet");
    sqlpost_ok("extract " + q(hub) + " orem --output " + q(remote));
    sqlpost_ok("config " + q(remote) + " receive=imap imap.host=127.0.0.1 imap.port=" +
               env("MAILSTACK_IMAP_PORT") + " imap.user=orem imap.auth=XOAUTH2" +
               " smtp.user=orem smtp.auth=OAUTHBEARER tls.ca_file=" + q(env("MAILSTACK_CACERT")));
    const std::string orem = token_command("orem", oauth_tokens()["orem"]);
    set_token_command(remote, "imap", orem);
    set_token_command(remote, "smtp", orem);
  }

  // A command printing `token` from a 0600 file (the command line holds no token).
  [[nodiscard]] std::string token_command(const std::string& name, const std::string& token) const {
    const std::string file = dir.path(name + ".token");
    std::ofstream(file) << token << "\n";
    REQUIRE(chmod(file.c_str(), 0600) == 0);
    return "cat " + q(file);
  }

  static void set_token_command(const std::string& db, const std::string& protocol,
                                const std::string& command) {
    sqlpost_ok("config " + q(db) + " " + protocol + ".oauth2_token_command=" + q(command));
  }

  CommandResult run(const std::string& db) {
    auto r = run_sqlpost("run " + q(db) + " --once -v --log " + q(log));
    all_output += r.output;
    return r;
  }

  // Rounds until neither site has anything to send, receive or confirm (mail takes
  // a moment through Postfix; up to 400 rounds, a loaded machine needs more).
  void run_until_quiet() {
    for (int i = 0; i < 400; ++i) {
      for (const auto& db : {hub, remote}) {
        const auto r = run(db);
        REQUIRE_MESSAGE(r.exit_code == 0, db << "\n" << r.output);
      }
      if (site_quiet(hub) && site_quiet(remote)) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    FAIL("the sites did not become quiet in 400 rounds");
  }

  void expect_no_token_anywhere() {
    const std::string logged = file_text(log);
    for (const auto& entry : oauth_tokens()) {
      const std::string& user = entry.first;
      const std::string& token = entry.second;
      CHECK_MESSAGE(all_output.find(token) == std::string::npos, user << "'s token in the output");
      CHECK_MESSAGE(logged.find(token) == std::string::npos, user << "'s token in the log");
    }
  }
};

std::string dovecot_log() { return file_text(env("MAILSTACK_DIR") + "/log/dovecot.log"); }

}  // namespace

TEST_SUITE_BEGIN("e2e-oauth-mail");

TEST_CASE("a hub and a remote replicate with OAuth2 tokens over POP3, IMAP and SMTP") {
  if (!oauth_stack_running()) {
    return;
  }
  OAuthDeployment d;
  sqlite_shell(d.hub,
               "INSERT INTO item VALUES (3, 'chain', 40); UPDATE item SET qty = 4 "
               "WHERE id = 1;");
  sqlite_shell(d.remote,
               "INSERT INTO item VALUES (100, 'from the remote', 7);"
               "DELETE FROM item WHERE id = 2;");
  d.run_until_quiet();
  Database h = open_db(d.hub);
  Database r = open_db(d.remote);
  const std::string diff = compare_tables(h, r, "item");
  CHECK_MESSAGE(diff.empty(), diff);
  CHECK(query_int(h, "SELECT count(*) FROM item") == 3);  // 1, 3, 100
  CHECK(query_int(r, "SELECT qty FROM item WHERE id = 1") == 4);
  for (const auto& path : {d.hub, d.remote}) {
    CHECK(run_command("sqlite3 " + q(path) + " 'PRAGMA integrity_check'").output == "ok\n");
  }
  d.expect_no_token_anywhere();
  // The mechanisms asked for were the ones used (Dovecot also answers Postfix's AUTH).
  const std::string logged = dovecot_log();
  CHECK(logged.find("pop3-login: Info: Login: user=<ohub>, method=OAUTHBEARER") !=
        std::string::npos);
  CHECK(logged.find("imap-login: Info: Login: user=<orem>, method=XOAUTH2") != std::string::npos);
  const std::string postfix = file_text(env("MAILSTACK_DIR") + "/log/postfix.log");
  CHECK(postfix.find("sasl_method=OAUTHBEARER, sasl_username=orem") != std::string::npos);
  CHECK(postfix.find("sasl_method=OAUTHBEARER, sasl_username=ohub") != std::string::npos);
}

TEST_CASE("a refused token is a login failure that names the token, never shows it") {
  if (!oauth_stack_running()) {
    return;
  }
  OAuthDeployment d;
  const std::string wrong = "revoked-token-5d1c8e0b";
  OAuthDeployment::set_token_command(d.hub, "pop3", d.token_command("wrong", wrong));
  const auto r = d.run(d.hub);
  CHECK(r.exit_code == kExitConfig);
  CHECK_MESSAGE(
      r.output.find("login denied: the OAuth2 access token from pop3.oauth2_token_command was "
                    "refused") != std::string::npos,
      r.output);
  const auto check = run_sqlpost("check " + q(d.hub));
  d.all_output += check.output;
  CHECK(check.exit_code != 0);
  CHECK_MESSAGE(
      check.output.find("FAIL pop3: login - login denied: the OAuth2 access token "
                        "from pop3.oauth2_token_command was refused") != std::string::npos,
      check.output);
  CHECK(d.all_output.find(wrong) == std::string::npos);
  CHECK(file_text(d.log).find(wrong) == std::string::npos);
  d.expect_no_token_anywhere();
}

TEST_CASE("a failing or unusable token command is a configuration error naming the setting") {
  if (!oauth_stack_running()) {
    return;
  }
  OAuthDeployment d;
  struct Case {
    std::string command;
    std::string expected;
  };
  const std::vector<Case> cases{
      {"echo 'refresh token expired' >&2; exit 3",
       "pop3.oauth2_token_command: the token command failed (exit status 3): refresh token "
       "expired"},
      {"true", "pop3.oauth2_token_command: the command printed no access token"},
      {"printf 'secret-part-one\\nsecret-part-two\\n'",
       "pop3.oauth2_token_command: the command's output holds a space, line break or control "
       "character"},
      {"head -c 20000 /dev/zero | tr '\\0' a",
       "pop3.oauth2_token_command: the command printed more than 16384 bytes"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.command);
    OAuthDeployment::set_token_command(d.hub, "pop3", c.command);
    const auto r = d.run(d.hub);
    CHECK(r.exit_code == kExitConfig);
    CHECK_MESSAGE(r.output.find(c.expected) != std::string::npos, r.output);
    CHECK(r.output.find("secret-part") == std::string::npos);
    const auto check = run_sqlpost("check " + q(d.hub));
    CHECK(check.exit_code == kExitConfig);
    CHECK_MESSAGE(check.output.find(c.expected) != std::string::npos, check.output);
  }
  CHECK(file_text(d.log).find("secret-part") == std::string::npos);
}

TEST_CASE("sqlpost check says it logged in with a token from the command") {
  if (!oauth_stack_running()) {
    return;
  }
  OAuthDeployment d;
  const auto hub = run_sqlpost("check " + q(d.hub));
  CHECK_MESSAGE(hub.exit_code == 0, hub.output);
  for (const char* line :
       {"ok   smtp: token - got an OAuth2 access token from pop3.oauth2_token_command (not "
        "shown)\n",
        "ok   smtp: login - logged in as ohub with an OAuth2 access token from "
        "pop3.oauth2_token_command\n",
        "ok   pop3: token - got an OAuth2 access token from pop3.oauth2_token_command (not "
        "shown)\n",
        "ok   pop3: login - logged in as ohub with an OAuth2 access token from "
        "pop3.oauth2_token_command\n",
        "ok   pop3: mailbox - mailbox opened\n", "all steps passed\n"}) {
    CHECK_MESSAGE(hub.output.find(line) != std::string::npos, line << "\n" << hub.output);
  }
  const auto remote = run_sqlpost("check " + q(d.remote));
  CHECK_MESSAGE(remote.exit_code == 0, remote.output);
  CHECK(remote.output.find("ok   imap: login - logged in as orem with an OAuth2 access token "
                           "from imap.oauth2_token_command\n") != std::string::npos);
  CHECK(remote.output.find("ok   smtp: login - logged in as orem with an OAuth2 access token "
                           "from smtp.oauth2_token_command\n") != std::string::npos);
  d.all_output += hub.output + remote.output;
  d.expect_no_token_anywhere();
}

TEST_CASE("an XOAUTH2/OAUTHBEARER mechanism without a token command, or PLAIN with one") {
  if (!oauth_stack_running()) {
    return;
  }
  OAuthDeployment d;
  sqlpost_ok("config " + q(d.hub) + " pop3.auth=PLAIN");
  auto r = d.run(d.hub);
  CHECK(r.exit_code == kExitConfig);
  CHECK_MESSAGE(r.output.find("pop3.auth=PLAIN cannot carry the OAuth2 access token of "
                              "pop3.oauth2_token_command") != std::string::npos,
                r.output);
  const std::string password = d.dir.path("ohub.password");
  std::ofstream(password) << "not-used\n";
  REQUIRE(chmod(password.c_str(), 0600) == 0);
  sqlpost_ok("config " + q(d.hub) + " pop3.auth=XOAUTH2 pop3.oauth2_token_command= " +
             "pop3.password_file=" + q(password));
  r = d.run(d.hub);
  CHECK(r.exit_code == kExitConfig);
  CHECK_MESSAGE(r.output.find("pop3.auth=XOAUTH2 needs an OAuth2 access token: set "
                              "pop3.oauth2_token_command") != std::string::npos,
                r.output);
}

TEST_SUITE_END();
