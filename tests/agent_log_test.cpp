// Tests of agent/log: file format, rotation, verbose gating, stderr format, bad paths.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <string>

#include "agent/log.h"
#include "tests/support.h"

namespace sqlpost {
namespace {

using test::read_file;

// Sends stderr (fd 2) to a file for its lifetime.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) : saved_(::dup(2)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::dup2(fd, 2);
    ::close(fd);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture() {
    ::dup2(saved_, 2);
    ::close(saved_);
  }

 private:
  int saved_;
};

// Resets logging to stderr when a test case ends, so the file can be removed.
struct ResetLogging {
  ResetLogging() = default;
  ResetLogging(const ResetLogging&) = delete;
  ResetLogging& operator=(const ResetLogging&) = delete;
  ~ResetLogging() { reset_logging(); }
};

}  // namespace

TEST_CASE("log lines reach the file with timestamp and level") {
  const test::TempDir dir;
  const ResetLogging reset;
  const std::string file = dir.path("agent.log");
  REQUIRE(init_logging(LogOptions{.file = file}).ok());
  log_info("first pass done");
  log_warn("mailbox slow");
  log_error("link failed");
  const std::string text = read_file(file);
  CHECK(text.find("[info] first pass done\n") != std::string::npos);
  CHECK(text.find("[warn] mailbox slow\n") != std::string::npos);
  CHECK(text.find("[error] link failed\n") != std::string::npos);
  // "2026-11-25T10:00:00.123Z - sqlpost[4242] [info] text" (no site set: "-")
  const std::string first_line = text.substr(0, text.find('\n'));
  REQUIRE(first_line.size() > 24);
  CHECK(first_line[4] == '-');
  CHECK(first_line[10] == 'T');
  CHECK(first_line[13] == ':');
  CHECK(first_line[19] == '.');
  CHECK(first_line[23] == 'Z');
  CHECK(first_line.substr(24) ==
        " - sqlpost[" + std::to_string(::getpid()) + "] [info] first pass done");
}

TEST_CASE("the time is UTC and the site is named once known") {
  const test::TempDir dir;
  const ResetLogging reset;
  const std::string file = dir.path("agent.log");
  REQUIRE(init_logging(LogOptions{.file = file}).ok());
  const std::time_t before = std::time(nullptr);
  set_log_site("shop12");
  log_info("with site");
  set_log_site("");
  const std::time_t after = std::time(nullptr);
  const std::string text = read_file(file);
  const std::string line = text.substr(0, text.find('\n'));
  std::tm tm{};
  std::istringstream(line.substr(0, 19)) >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  const std::time_t logged = timegm(&tm);  // as UTC: equal to the clock only if it was UTC
  CHECK(logged >= before);
  CHECK(logged <= after);
  CHECK(line.substr(23) == "Z shop12 sqlpost[" + std::to_string(::getpid()) + "] [info] with site");
}

TEST_CASE("a message is written as given, never used as a format string") {
  const test::TempDir dir;
  const ResetLogging reset;
  const std::string file = dir.path("agent.log");
  REQUIRE(init_logging(LogOptions{.file = file}).ok());
  log_info("braces {} and {0} and %s stay");
  CHECK(read_file(file).find("braces {} and {0} and %s stay") != std::string::npos);
}

TEST_CASE("debug lines are written only when verbose") {
  const test::TempDir dir;
  const ResetLogging reset;
  const std::string quiet = dir.path("quiet.log");
  REQUIRE(init_logging(LogOptions{.file = quiet}).ok());
  log_debug("hidden detail");
  log_info("shown");
  CHECK(read_file(quiet).find("hidden detail") == std::string::npos);
  CHECK(read_file(quiet).find("shown") != std::string::npos);

  const std::string loud = dir.path("loud.log");
  REQUIRE(init_logging(LogOptions{.file = loud, .verbose = true}).ok());
  log_debug("visible detail");
  CHECK(read_file(loud).find("[debug] visible detail") != std::string::npos);
}

TEST_CASE("the file rotates past max_bytes and keeps max_files") {
  const test::TempDir dir;
  const ResetLogging reset;
  const std::string file = dir.path("agent.log");
  REQUIRE(init_logging(LogOptions{.file = file, .max_bytes = 1000, .max_files = 2}).ok());
  for (int i = 0; i < 100; ++i) {
    log_info("line " + std::to_string(i) + " of the rotation test, some padding here");
  }
  CHECK(std::filesystem::exists(dir.path("agent.1.log")));
  CHECK(std::filesystem::exists(dir.path("agent.2.log")));
  CHECK_FALSE(std::filesystem::exists(dir.path("agent.3.log")));
  CHECK(std::filesystem::file_size(file) <= 1000);
  CHECK(read_file(file).find("line 99 ") != std::string::npos);
}

TEST_CASE("stderr shows every level, in the same format as the file") {
  const test::TempDir dir;
  const ResetLogging reset;
  const std::string captured = dir.path("stderr.txt");
  {
    const StderrCapture capture(captured);
    log_info("before init");
    REQUIRE(init_logging(LogOptions{.file = dir.path("agent.log")}).ok());
    log_info("cron sees this");
    log_warn("careful");
    log_debug("not verbose");
  }
  const std::string text = read_file(captured);
  const std::string tag = "Z - sqlpost[" + std::to_string(::getpid()) + "] ";
  CHECK(text.find(tag + "[info] before init\n") != std::string::npos);
  CHECK(text.find(tag + "[info] cron sees this\n") != std::string::npos);
  CHECK(text.find(tag + "[warn] careful\n") != std::string::npos);
  CHECK(text.find("not verbose") == std::string::npos);
  // The file has the same line as stderr.
  const std::string file_text = read_file(dir.path("agent.log"));
  const auto at = text.find("[warn] careful");
  REQUIRE(at != std::string::npos);
  const auto newline_before = text.rfind('\n', at);
  const auto start = newline_before == std::string::npos ? 0 : newline_before + 1;
  const std::string stderr_line = text.substr(start, text.find('\n', at) + 1 - start);
  CHECK(file_text.find(stderr_line) != std::string::npos);
}

TEST_CASE("an unopenable log file is kConfig naming the path") {
  const test::TempDir dir;
  const ResetLogging reset;
  std::ofstream(dir.path("plain-file")) << "x";
  const std::string below_file = dir.path("plain-file") + "/agent.log";
  auto result = init_logging(LogOptions{.file = below_file});
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().code == Errc::kConfig);
  CHECK(result.error().message.find(below_file) != std::string::npos);

  auto is_dir = init_logging(LogOptions{.file = dir.dir()});
  REQUIRE_FALSE(is_dir.ok());
  CHECK(is_dir.error().code == Errc::kConfig);

  auto zero = init_logging(LogOptions{.file = dir.path("a.log"), .max_bytes = 0});
  REQUIRE_FALSE(zero.ok());
  CHECK(zero.error().code == Errc::kConfig);
}

}  // namespace sqlpost
