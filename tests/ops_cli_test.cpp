// The command line's honest interfaces, run end to end through the program:
// exit code 7 and what a file is when it is not a site, damaged metadata as a
// message and exit code 8 (never an abort), no exception leaving the program,
// log lines with UTC time, site and pid, config --all, short help with named
// values.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "agent/commands.h"
#include "agent/exit_codes.h"
#include "agent/version.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

std::size_t line_count(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A site with one published table and a file link, ready to run.
std::string make_site(const TempDir& dir) {
  std::string db = dir.path("hq.db");
  sqlite_shell(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, a)");
  sqlpost_ok("init " + q(db) + " --site hq --address hq@hq.test");
  sqlpost_ok("config " + q(db) + " link=file file.dir=" + q(dir.path("mail")));
  sqlpost_ok("publish " + q(db) + " sales t");
  sqlpost_ok("site add " + q(db) + " r1 --address r1@r.test");
  sqlpost_ok("subscribe " + q(db) + " r1 sales");
  return db;
}

void expect_not_a_site(const std::string& args, const std::string& says) {
  const auto r = run_sqlpost(args);
  CHECK_MESSAGE(r.exit_code == 7, args << "\n" << r.output);
  CHECK_MESSAGE(r.output.find(says) != std::string::npos, args << "\n" << r.output);
  CHECK_MESSAGE(line_count(r.output) == 1, r.output);
}

}  // namespace

TEST_SUITE_BEGIN("ops-cli");

TEST_CASE("exit code 7 for anything that is not a site, saying what it is") {
  TempDir dir;
  const std::string plain = dir.path("plain.db");
  sqlite_shell(plain, "CREATE TABLE t(a)");
  for (const char* command : {"status", "run", "config", "conflicts"}) {
    expect_not_a_site(std::string(command) + " " + q(plain),
                      "is an SQLite database but not an sqlpost site");
  }
  expect_not_a_site("site list " + q(plain), "run 'sqlpost init " + plain);
  expect_not_a_site("status " + q(dir.path("missing.db")), "no such file");
  expect_not_a_site("status " + q(dir.dir()), "is a folder");

  std::ofstream(dir.path("notes.txt")) << "shopping list\nmilk\n";
  expect_not_a_site("status " + q(dir.path("notes.txt")),
                    "is not an SQLite database: it is a text file starting with \"shopping list\"");
  expect_not_a_site("init " + q(dir.path("notes.txt")) + " --site a --address a@a",
                    "a text file starting with");
  run_command("gzip -c " + q(plain) + " > " + q(dir.path("backup.db.gz")));
  expect_not_a_site("status " + q(dir.path("backup.db.gz")), "gzip-compressed data");
  std::ofstream(dir.path("empty.db")).close();
  expect_not_a_site("status " + q(dir.path("empty.db")), "is an empty file");

  // init still makes a site of a new file, an empty one and a plain database.
  sqlpost_ok("init " + q(plain) + " --site a --address a@a.test");
  sqlpost_ok("init " + q(dir.path("empty.db")) + " --site b --address b@b.test");
  sqlpost_ok("status " + q(plain));
}

TEST_CASE("damaged sqlpost metadata is a message and exit code 8, never an abort") {
  TempDir dir;
  const std::string db = make_site(dir);
  sqlite_shell(db, "UPDATE sqlpost_articles SET columns = 'id, a' WHERE table_name = 't'");
  for (const char* command : {"run", "status", "extract"}) {
    const std::string args =
        std::string(command) + " " + q(db) +
        (std::string(command) == "extract" ? " r1 --output " + q(dir.path("r1.db"))
         : std::string(command) == "run"   ? " --once"
                                           : "");
    const auto r = run_sqlpost(args);
    CHECK_MESSAGE(r.exit_code == 8, args << "\n" << r.output);
    CHECK_MESSAGE(r.output.find("damaged sqlpost metadata: sqlpost_articles row (sales, t) "
                                "column 'columns' holds 'id, a'") != std::string::npos,
                  r.output);
  }
  sqlite_shell(db, "UPDATE sqlpost_articles SET columns = NULL");  // repaired: every column
  sqlpost_ok("run " + q(db) + " --once");
  sqlite_shell(db, "INSERT INTO t VALUES (1, 'x'); UPDATE sqlpost_layouts SET columns = '{}'");
  const auto r = run_sqlpost("run " + q(db) + " --once");
  CHECK_MESSAGE(r.exit_code == 8, r.output);
  CHECK(r.output.find("damaged sqlpost metadata: sqlpost_layouts row") != std::string::npos);
}

TEST_CASE("an exception becomes a message and exit code 1, not an abort") {
  TempDir dir;
  const std::string captured = dir.path("stderr.txt");
  const int saved = ::dup(2);
  const int fd = ::open(captured.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  ::dup2(fd, 2);
  ::close(fd);
  const int thrown = run_guarded([]() -> int { throw std::runtime_error("boom"); });
  const int unknown = run_guarded([]() -> int { throw 42; });
  const int fine = run_guarded([] { return 5; });
  ::dup2(saved, 2);
  ::close(saved);
  CHECK(thrown == 1);
  CHECK(unknown == 1);
  CHECK(fine == 5);
  const std::string text = read_file(captured);
  CHECK(text.find("sqlpost: internal error: boom (") != std::string::npos);
  CHECK(text.find("sqlpost: internal error: an unknown exception") != std::string::npos);
}

TEST_CASE("log lines carry UTC time, site and pid, the same on stderr and in the file") {
  TempDir dir;
  const std::string db = make_site(dir);
  const std::string log = dir.path("agent.log");
  const auto r = run_sqlpost("run " + q(db) + " --once --log " + q(log));
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const std::regex line(
      R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z hq sqlpost\[(\d+)\] \[info\] received \d+ part)");
  std::smatch on_stderr;
  REQUIRE_MESSAGE(std::regex_search(r.output, on_stderr, line), r.output);
  const std::string file = read_file(log);
  CHECK_MESSAGE(file.find(on_stderr.str(0)) != std::string::npos, file);
  std::istringstream lines(r.output);
  for (std::string l; std::getline(lines, l);) {
    CHECK_MESSAGE(std::regex_search(l, std::regex(R"(^\S+Z hq sqlpost\[\d+\] \[\w+\] )")), l);
  }
}

TEST_CASE("config --all shows the defaults of the keys not set") {
  TempDir dir;
  const std::string db = make_site(dir);
  sqlpost_ok("config " + q(db) + " resend_timeout=60");
  const auto plain = run_sqlpost("config " + q(db));
  CHECK(plain.output.find("gap_patience") == std::string::npos);
  const auto all = run_sqlpost("config " + q(db) + " --all");
  REQUIRE_MESSAGE(all.exit_code == 0, all.output);
  for (const char* expected :
       {"address=hq@hq.test\n", "link=file\n", "resend_timeout=60\n",
        "gap_patience=300  (default)\n", "max_message_bytes=1000000  (default)\n",
        "smtp.security=starttls  (default)\n", "pop3.host=  (not set)\n"}) {
    CHECK_MESSAGE(all.output.find(expected) != std::string::npos, expected << "\n" << all.output);
  }
  CHECK(all.output.find("resend_timeout=3600") == std::string::npos);
}

TEST_CASE("the top-level help is short and every option names its value") {
  const auto top = run_sqlpost("--help");
  REQUIRE(top.exit_code == 0);
  CHECK_MESSAGE(line_count(top.output) <= 30, top.output);
  std::istringstream lines(top.output);
  std::vector<std::string> commands;
  bool in_commands = false;
  for (std::string l; std::getline(lines, l);) {
    CHECK_MESSAGE(l.size() <= 100, l);
    if (l.rfind("Subcommands:", 0) == 0) {
      in_commands = true;
    } else if (in_commands && l.size() > 2 && l[0] == ' ') {
      commands.push_back(l.substr(2, l.find(' ', 2) - 2));
    }
  }
  CHECK(commands.size() >= 15);
  const std::regex unnamed(R"( (TEXT|INT|UINT|FLOAT)\b)");
  for (const auto& c : commands) {
    const auto help = run_sqlpost(c == "site" ? "site add --help" : c + " --help");
    CHECK_MESSAGE(help.exit_code == 0, c);
    CHECK_MESSAGE(!std::regex_search(help.output, unnamed), c << "\n" << help.output);
  }
  const auto run = run_sqlpost("run --help").output;
  for (const char* named : {"--every INTERVAL", "--log FILE"}) {
    CHECK_MESSAGE(run.find(named) != std::string::npos, run);
  }
  CHECK(run_sqlpost("passthrough --help").output.find("--site SITE") != std::string::npos);
  CHECK(run_sqlpost("--version").output == "sqlpost " + std::string(kVersion) + "\n");
}

TEST_CASE("one exit-code table: every error maps to a documented code, docs list the same") {
  std::set<int> listed;
  for (const auto& row : exit_code_meanings()) {
    listed.insert(row.code);
  }
  for (int e = 0; e <= static_cast<int>(Errc::kInternal); ++e) {
    const auto code = static_cast<Errc>(e);
    CAPTURE(errc_name(code));
    CHECK(listed.count(exit_code_for(code)) == 1);
    CHECK(exit_code_for(code) != kExitOk);
  }
  std::ifstream doc(std::string(SQLPOST_SOURCE_DIR) + "/docs/operations.md");
  REQUIRE(doc.good());
  std::set<int> documented;
  bool in_table = false;
  const std::regex row(R"(^\| (\d+) \| )");
  for (std::string line; std::getline(doc, line);) {
    if (line.rfind("## ", 0) == 0) {
      in_table = line == "## Exit codes";
    }
    std::smatch m;
    if (in_table && std::regex_search(line, m, row)) {
      documented.insert(std::stoi(m[1]));
    }
  }
  CHECK(documented == listed);
}
