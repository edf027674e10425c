// Secrets at rest and exit codes of the sqlpost program, end to end
// (docs/security.md, docs/operations.md).
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <random>

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/private_files.h"
#include "replication/payload.h"
#include "schema/metadata.h"
#include "tests/support.h"
#include "transport/codec.h"
#include "transport/file_link.h"

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

namespace {

// A hub and r1 over the file link, and a way to drop mail from r1 (with the pair
// key, so it authenticates) into the hub's mailbox.
struct Pair {
  TempDir dir;
  std::string hub = dir.path("hq.db");
  std::string r1 = dir.path("r1.db");
  std::string mail = dir.path("mail");

  Pair() {
    sqlite_shell(hub,
                 "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE "
                 "secret(id INTEGER PRIMARY KEY, v TEXT)");
    sqlpost_ok("init " + q(hub) + " --site hq --address hq@hq.test");
    sqlpost_ok("config " + q(hub) + " link=file file.dir=" + q(mail));
    sqlpost_ok("publish " + q(hub) + " all item");
    sqlpost_ok("site add " + q(hub) + " r1 --address r1@r1.test");
    sqlpost_ok("subscribe " + q(hub) + " r1 all");
    sqlpost_ok("extract " + q(hub) + " r1 --output " + q(r1));
  }

  transport::Key key() {
    Database db = open_db(hub);
    auto partner = load_partner(db, "r1");
    REQUIRE(partner.ok());
    transport::Key::Bytes bytes{};
    std::copy(partner->key.begin(), partner->key.end(), bytes.begin());
    return transport::Key(bytes);
  }

  void drop(const std::vector<std::string>& mails) {
    auto link = transport::FileLink::open(mail, "r1@r1.test");
    REQUIRE(link.ok());
    for (const auto& m : mails) {
      REQUIRE((*link)->send("hq@hq.test", m).ok());
    }
    REQUIRE((*link)->flush().ok());
  }

  std::vector<std::string> message(std::uint64_t seq, const std::vector<std::uint8_t>& payload,
                                   std::size_t max_bytes = 1'000'000) {
    auto mails = transport::encode_message({"r1", "hq", seq}, "r1@r1.test", "hq@hq.test", payload,
                                           key(), max_bytes);
    REQUIRE(mails.ok());
    return *mails;
  }
};

}  // namespace

TEST_CASE("exit code 5 end to end: a zstd bomb, parts of two messages, a refused message") {
  SUBCASE("a zstd bomb from an authenticated partner is set aside") {
    Pair p;
    p.drop(p.message(1, std::vector<std::uint8_t>(std::size_t{64} << 20, 0)));
    const auto run = run_sqlpost("run " + q(p.hub) + " --once");
    CHECK_MESSAGE(run.exit_code == 5, run.output);
    CHECK(run.output.find("set aside") != std::string::npos);
    // Not retried: the next run is clean but for the "rejected" alert (exit 10,
    // docs/operations.md), which is switched off here to see the run's own code.
    run_sqlpost("config " + q(p.hub) + " alert.rejected=0");
    const auto again = run_sqlpost("run " + q(p.hub) + " --once");
    CHECK_MESSAGE(again.exit_code == 0, again.output);
  }
  SUBCASE("parts of two different messages with the same number are never mixed") {
    Pair p;
    std::vector<std::uint8_t> noise(30'000);
    std::mt19937_64 rng(5);  // NOLINT(cert-msc32-c,cert-msc51-cpp): incompressible, reproducible
    for (auto& byte : noise) {
      byte = static_cast<std::uint8_t>(rng());
    }
    auto a = p.message(1, noise, 8192);
    noise[0] ^= 1U;
    auto b = p.message(1, noise, 8192);
    REQUIRE(a.size() > 2);
    const std::string a_part_2 = a[1];
    a[1] = b[1];  // part 2 of another message under number 1
    p.drop(a);
    const auto waiting = run_sqlpost("run " + q(p.hub) + " --once");
    CHECK_MESSAGE(waiting.exit_code == 0, waiting.output);  // both wait for their other parts
    Database hub = open_db(p.hub);
    CHECK(query_int(hub, "SELECT count(DISTINCT digest) FROM sqlpost_inbox") == 2);
    CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_rejected") == 0);
    p.drop({a_part_2});  // message a is complete: judged alone (its noise is no payload)
    const auto judged = run_sqlpost("run " + q(p.hub) + " --once");
    CHECK_MESSAGE(judged.exit_code == 5, judged.output);
    CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_rejected") == a.size());
  }
  SUBCASE("a change to a table the hub never published") {
    Pair p;
    Payload payload;
    payload.tables.push_back(TableBlock{"secret", {"id", "v"}, 1});
    WireChange w;
    w.op = ChangeOp::kInsert;
    w.key = {Value(std::int64_t{1})};
    w.columns = {1};
    w.new_values = {Value::text("stolen")};
    payload.epochs.push_back(EpochBlock{1, {w}});
    p.drop(p.message(1, encode_payload(payload)));
    const auto run = run_sqlpost("run " + q(p.hub) + " --once");
    CHECK_MESSAGE(run.exit_code == 5, run.output);
    const auto status = run_sqlpost("status " + q(p.hub));
    CHECK(status.output.find("STOPPED: not authorized") != std::string::npos);
    Database db = open_db(p.hub);
    CHECK(query_int(db, "SELECT count(*) FROM secret") == 0);
  }
}

TEST_SUITE_END();
