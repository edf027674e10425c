// Secrets at rest and exit codes of the sqlpost program, end to end
// (docs/security.md, docs/operations.md).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/private_files.h"
#include "tests/support.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::string q(const std::string& s) { return shell_quote(s); }

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_SUITE_BEGIN("security");

TEST_CASE("init makes the database private; status warns; a stored secret tightens it again") {
  TempDir dir;
  const std::string db = dir.path("hq.db");
  const mode_t previous = ::umask(022);
  const auto init = run_sqlpost("init " + q(db) + " --site hq --address hq@hq.test");
  ::umask(previous);
  REQUIRE_MESSAGE(init.exit_code == 0, init.output);
  CHECK(mode_of(db) == 0600);
  auto quiet = run_sqlpost("status " + q(db));
  CHECK(quiet.output.find("WARNING") == std::string::npos);

  REQUIRE(::chmod(db.c_str(), 0644) == 0);
  const auto warned = run_sqlpost("status " + q(db));
  CHECK(warned.exit_code == 0);
  CHECK(warned.output.find("WARNING: " + db + " may be read by other users") != std::string::npos);
  const auto json = run_sqlpost("status " + q(db) + " --json");
  CHECK(nlohmann::json::parse(json.output)["database_private"] == false);

  const char* bin = std::getenv("SQLPOST_BIN");
  REQUIRE(bin != nullptr);
  const auto secret =
      run_command("printf 'pw\\n' | " + q(bin) + " config " + q(db) + " --secret pop3.password");
  REQUIRE_MESSAGE(secret.exit_code == 0, secret.output);
  CHECK(secret.output.find("made " + db + " private (mode 0600)") != std::string::npos);
  CHECK(mode_of(db) == 0600);
  for (const char* companion : {"-wal", "-shm"}) {
    const std::string path = db + companion;
    if (::access(path.c_str(), F_OK) == 0) {
      CHECK(mode_of(path) == 0600);
    }
  }
}

TEST_CASE("the agent keeps its memory out of core dumps") {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    disable_core_dumps();
    rlimit core{};
    const bool no_core = getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_cur == 0;
    const bool not_dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0;
    _exit(no_core && not_dumpable ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_SUITE_END();
