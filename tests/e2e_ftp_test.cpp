// End to end through the sqlpost program and the real vsftpd of tools/ftpstack
// (FTPSTACK_* in the environment, from $FTPSTACK_DIR/ftpstack.env). Without
// FTPSTACK_HOST the program exits 77, which ctest reports as skipped. A hub and two
// remotes share one folder on the server: the hub and site1 use explicit TLS (the
// default), site2 clear-text FTP. Every scenario ends by comparing the databases row
// by row and running PRAGMA integrity_check.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "tests/support.h"
#include "transport/curl_ftp.h"

using namespace sqlpost;        // NOLINT(google-build-using-namespace)
using namespace sqlpost::test;  // NOLINT(google-build-using-namespace)

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): tests
  return value != nullptr ? value : "";
}

std::string q(const std::string& s) { return shell_quote(s); }

// A folder of its own on the server for each deployment ("case 1234 é": a space and
// a non-ASCII letter travel through the URL and the FTP commands).
std::string fresh_folder() {
  std::random_device rd;
  return "sqlpost case " + std::to_string(rd() % 1'000'000) + " \xc3\xa9";
}

// The files below the deployment's folder, as the server stores them.
std::size_t files_under(const std::string& folder, const char* sub) {
  const std::filesystem::path root = env("FTPSTACK_ROOT");
  std::size_t count = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(root / folder, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().parent_path().filename() == sub) {
      ++count;
    }
  }
  return count;
}

struct FtpDeployment {
  TempDir dir;
  std::string hub = dir.path("hq.db");
  std::string s1 = dir.path("site1.db");
  std::string s2 = dir.path("site2.db");
  std::string folder = fresh_folder();

  FtpDeployment() {
    sqlite_shell(hub,
                 "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT, "
                 "balance REAL, photo BLOB);"
                 "INSERT INTO customer VALUES (1, 'Ada', 'east', 10.5, x'00ff'), (2, 'Bob', NULL, "
                 "NULL, NULL);");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    configure(hub);
    sqlpost_ok("config " + q(hub) + " max_message_bytes=16384");
    hub_password_from_file();
    sqlpost_ok("publish " + q(hub) + " sales customer");
    for (const char* r : {"site1", "site2"}) {
      sqlpost_ok("site add " + q(hub) + " " + r + " --address " + r + "@" + r + ".test");
      sqlpost_ok("subscribe " + q(hub) + " " + r + " sales");
    }
    sqlpost_ok("extract " + q(hub) + " site1 --output " + q(s1));
    sqlpost_ok("extract " + q(hub) + " site2 --output " + q(s2));
    // A remote inherits link, ftp.host/port/security/dir and timeout from the hub.
    sqlpost_ok("config " + q(s1) + " ftp.user=" + env("FTPSTACK_USER") +
               " tls.ca_file=" + q(env("FTPSTACK_CACERT")));
    configure(s2);
    site1_password_by_secret();
    site2_clear_text();
  }

  // Everything but the password; explicit TLS is the default.
  void configure(const std::string& db) const {
    sqlpost_ok("config " + q(db) + " link=ftp ftp.host=" + env("FTPSTACK_HOST") +
               " ftp.port=" + env("FTPSTACK_PORT") + " ftp.user=" + env("FTPSTACK_USER") +
               " ftp.dir=" + q(folder) + " tls.ca_file=" + q(env("FTPSTACK_CACERT")) +
               " timeout=10");
  }

  void hub_password_from_file() {
    const std::string file = dir.path("ftp.password");
    std::ofstream(file) << env("FTPSTACK_PASSWORD") << "\n";
    REQUIRE(chmod(file.c_str(), 0600) == 0);
    sqlpost_ok("config " + q(hub) + " ftp.password_file=" + q(file));
  }

  void site1_password_by_secret() const {
    const auto r =
        run_command("printf '%s\\n' " + q(env("FTPSTACK_PASSWORD")) + " | " +
                    q(env("SQLPOST_BIN")) + " config " + q(s1) + " --secret ftp.password");
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  }

  // site2: plain FTP (the server offers TLS but does not force it).
  void site2_clear_text() const {
    REQUIRE(setenv("SQLPOST_TEST_FTP_PASSWORD", env("FTPSTACK_PASSWORD").c_str(), 1) == 0);
    sqlpost_ok("config " + q(s2) + " ftp.security=none ftp.password_env=SQLPOST_TEST_FTP_PASSWORD");
  }

  void round() const {
    for (const auto& db : {hub, s1, s2}) {
      const auto r = run_sqlpost("run " + q(db) + " --once");
      CHECK_MESSAGE(r.exit_code == 0, db << "\n" << r.output);
    }
  }

  void run_until_quiet() const {
    for (int i = 0; i < 10; ++i) {
      round();
      if (site_quiet(hub) && site_quiet(s1) && site_quiet(s2)) {
        return;
      }
    }
    FAIL("the sites did not become quiet in 10 rounds");
  }

  void expect_converged() const {
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

int main(int argc, char** argv) {
  if (env("FTPSTACK_HOST").empty()) {
    std::cout << "FTPSTACK_HOST is not set (start tools/ftpstack/start.sh and load its "
                 "ftpstack.env): FTP tests skipped\n";
    return 77;  // SKIP_RETURN_CODE
  }
  doctest::Context context(argc, argv);
  return context.run();
}

TEST_SUITE_BEGIN("e2e-ftp");

TEST_CASE("hub and two remotes replicate both ways over FTP (explicit TLS and clear text)") {
  FtpDeployment d;
  sqlite_shell(d.hub,
               "BEGIN; INSERT INTO customer VALUES (3, 'Cy', 'west', -0.0, zeroblob(0));"
               "UPDATE customer SET balance = 11.25 WHERE id = 1; COMMIT;");
  sqlite_shell(d.s1,
               "BEGIN; INSERT INTO customer VALUES (100, 'From site1', 'north', 1e-300, "
               "randomblob(40000)); INSERT INTO customer VALUES (101, 'big int', "
               "9223372036854775807, NULL, NULL); COMMIT; DELETE FROM customer WHERE id = 2;");
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
  // Every mail was deleted after its inbox commit; no upload was left half done.
  CHECK(files_under(d.folder, "new") == 0);
  CHECK(files_under(d.folder, "tmp") == 0);
  const auto log =
      run_command("grep -c '\"AUTH TLS\"' " + q(env("FTPSTACK_DIR") + "/log/vsftpd.log"));
  CHECK(std::stoi(log.output) > 0);  // the TLS sites did negotiate TLS
}

TEST_CASE("an unfinished upload in tmp/ and foreign files are never read or removed") {
  FtpDeployment d;
  d.round();  // the folders exist now
  const std::filesystem::path own =
      std::filesystem::path(env("FTPSTACK_ROOT")) / d.folder / "hq@hq.test";
  const std::string partial = (own / "tmp" / "00000000000000000001.1_0_00000000.sqlpost").string();
  const std::string foreign = (own / "new" / ".hidden").string();
  REQUIRE(run_command("printf 'half a mail' > " + q(partial) + " && printf x > " + q(foreign))
              .exit_code == 0);
  sqlite_shell(d.s1, "INSERT INTO customer VALUES (300, 'after', NULL, NULL, NULL);");
  d.run_until_quiet();
  d.expect_converged();
  CHECK(run_command("test -f " + q(partial) + " && test -f " + q(foreign)).exit_code == 0);
}

TEST_CASE("FTP problems: wrong password and untrusted certificate are exit 3, nothing lost") {
  FtpDeployment d;
  sqlite_shell(d.hub, "INSERT INTO customer VALUES (400, 'waits', NULL, NULL, NULL);");
  REQUIRE(setenv("SQLPOST_TEST_FTP_WRONG", "Xq9-not-it", 1) == 0);
  sqlpost_ok("config " + q(d.hub) + " ftp.password_env=SQLPOST_TEST_FTP_WRONG");
  const auto denied = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(denied.exit_code == 3);
  CHECK_MESSAGE(denied.output.find("wrong user name or password") != std::string::npos,
                denied.output);
  CHECK(denied.output.find("Xq9-not-it") == std::string::npos);
  sqlpost_ok("config " + q(d.hub) + " ftp.password_env=");

  sqlpost_ok("config " + q(d.hub) + " tls.ca_file=");  // the system store: self-signed fails
  const auto untrusted = run_sqlpost("run " + q(d.hub) + " --once");
  CHECK(untrusted.exit_code == 3);
  CHECK_MESSAGE(untrusted.output.find("certificate") != std::string::npos, untrusted.output);
  sqlpost_ok("config " + q(d.hub) + " tls.ca_file=" + q(env("FTPSTACK_CACERT")));

  sqlpost_ok("config " + q(d.s2) + " ftp.password_env=");
  const auto cron = run_sqlpost("run " + q(d.s2) + " --once </dev/null");
  CHECK(cron.exit_code == 3);
  CHECK_MESSAGE(cron.output.find("--secret ftp.password") != std::string::npos, cron.output);
  REQUIRE(setenv("SQLPOST_TEST_FTP_PASSWORD", env("FTPSTACK_PASSWORD").c_str(), 1) == 0);
  sqlpost_ok("config " + q(d.s2) + " ftp.password_env=SQLPOST_TEST_FTP_PASSWORD");

  d.run_until_quiet();
  d.expect_converged();
  Database s1 = open_db(d.s1);
  CHECK(query_int(s1, "SELECT count(*) FROM customer WHERE id = 400") == 1);
}

TEST_SUITE_END();
