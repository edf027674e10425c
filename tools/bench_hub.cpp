// bench-hub — a full hub `sqlpost run --once` as the site count grows.
//
// A hub publishes `customer` with --subscribe-by region over the file link; S child
// sites subscribe to one region each. Two passes are timed, each a real
// `sqlpost run --once` process (receive, apply, prepare, send, history):
//   busy   after N customers were inserted, spread over the regions
//   idle   the next run, with nothing received and nothing to send
//   again  after N more customers: busy once more, with every child's mail folder
//          already made by the first busy pass (the steady state of a hub)
// S = 10 is the baseline, measured in the same run as S = --sites (default 1000).
// Goals (issue 11): busy at S sites ≤ 3× the 10-site pass; idle at 1,000 sites ≤ 0.2 s.
// The children never run: the pass measured is the hub's alone.
//
// Usage: bench-hub [--changes N] [--sites S] [--sqlpost PATH] [--dir PATH]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tools/bench_support.h"

namespace {

using sqlpost::bench::must;

using sqlpost::Database;
using Clock = std::chrono::steady_clock;

std::string shell_quoted(const std::string& s) { return "'" + s + "'"; }

struct Setup {
  std::string sqlpost;
  std::string dir;
  int changes = 10000;
};

// Seconds one `sqlpost ARGS` process took; exits the benchmark when it fails.
double timed_sqlpost(const Setup& setup, const std::string& args, const std::string& log) {
  const std::string command =
      shell_quoted(setup.sqlpost) + " " + args + " >>" + shell_quoted(log) + " 2>&1";
  const auto start = Clock::now();
  // NOLINTNEXTLINE(cert-env33-c): the benchmark times the shell command a user would type
  const int rc = std::system(command.c_str());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (rc != 0) {
    (void)std::fprintf(stderr, "bench-hub: '%s' failed (status %d); see %s\n", args.c_str(), rc,
                       log.c_str());
    std::exit(1);
  }
  return seconds;
}

std::string make_hub(const Setup& setup, int sites) {
  const std::string root = setup.dir + "/hub" + std::to_string(sites);
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root + "/mail");
  std::string hub = root + "/hub.db";
  const std::string log = root + "/sqlpost.log";
  timed_sqlpost(setup, "init " + shell_quoted(hub) + " --site hq --address hq@x.test", log);
  timed_sqlpost(
      setup, "config " + shell_quoted(hub) + " link=file file.dir=" + shell_quoted(root + "/mail"),
      log);
  Database db = must(Database::open(hub, Database::Mode::kReadWrite), "open");
  must(db.exec("CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, region TEXT)"), "schema");
  must(sqlpost::publish(db, {"sales", "customer", {}, "", "region", "incoming"}), "publish");
  must(db.exec("BEGIN"), "begin");
  for (int s = 0; s < sites; ++s) {
    const std::string name = "s" + std::to_string(s);
    must(sqlpost::add_partner(db, {name, name + "@x.test", sqlpost::Relation::kChild,
                                   std::vector<std::uint8_t>(32, static_cast<std::uint8_t>(s)), 0}),
         "site");
    must(sqlpost::subscribe(db, {name, "sales", "r" + std::to_string(s)}), "subscribe");
  }
  must(db.exec("COMMIT"), "commit");
  return hub;
}

void insert_customers(const std::string& hub, int sites, int changes, int first_id) {
  Database db = must(Database::open(hub, Database::Mode::kReadWrite), "open");
  must(db.exec("BEGIN"), "begin");
  auto insert = must(db.prepare("INSERT INTO customer VALUES (?, 'name', ?)"), "prepare");
  for (int i = 0; i < changes; ++i) {
    insert.bind(1, std::int64_t{first_id} + i).bind(2, "r" + std::to_string(i % sites));
    must(insert.run(), "insert");
  }
  must(db.exec("COMMIT"), "commit");
}

struct Figures {
  double busy = 0;
  double idle = 0;
  double again = 0;
};

Figures run(const Setup& setup, int sites) {
  const std::string hub = make_hub(setup, sites);
  const std::string log = setup.dir + "/hub" + std::to_string(sites) + "/sqlpost.log";
  timed_sqlpost(setup, "run " + shell_quoted(hub) + " --once",
                log);  // the first run seeds key state
  insert_customers(hub, sites, setup.changes, 0);
  Figures f;
  f.busy = timed_sqlpost(setup, "run " + shell_quoted(hub) + " --once", log);
  f.idle = timed_sqlpost(setup, "run " + shell_quoted(hub) + " --once", log);
  insert_customers(hub, sites, setup.changes, setup.changes);
  f.again = timed_sqlpost(setup, "run " + shell_quoted(hub) + " --once", log);
  return f;
}

std::string sibling_sqlpost(const char* argv0) {
  const auto here = std::filesystem::absolute(argv0).parent_path();
  return (here.parent_path() / "agent" / "sqlpost").string();
}

}  // namespace

int bench(int argc, char** argv) {
  sqlpost::bench::program_name() = "bench-hub";
  Setup setup{sibling_sqlpost(argv[0]), "/tmp/sqlpost-bench-hub", 10000};
  int sites = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--changes") {
      setup.changes = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    } else if (flag == "--sites") {
      sites = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    } else if (flag == "--sqlpost") {
      setup.sqlpost = argv[i + 1];
    } else if (flag == "--dir") {
      setup.dir = argv[i + 1];
    }
  }
  std::filesystem::create_directories(setup.dir);
  const Figures few = run(setup, 10);
  const Figures many = run(setup, sites);
  std::printf("bench-hub: %d changes over one region per site, file link, sqlpost run --once\n",
              setup.changes);
  std::printf("%-8s %12s %12s %12s\n", "sites", "busy s", "idle s", "again s");
  std::printf("%-8d %12.3f %12.3f %12.3f\n", 10, few.busy, few.idle, few.again);
  std::printf("%-8d %12.3f %12.3f %12.3f\n", sites, many.busy, many.idle, many.again);
  std::printf(
      "busy ratio %d/10 sites: %.1fx, again %.1fx (goal <= 3x); idle at %d sites: %.3f s "
      "(goal <= 0.2 s at 1,000)\n",
      sites, many.busy / few.busy, many.again / few.again, sites, many.idle);
  return 0;
}

int main(int argc, char** argv) { return sqlpost::bench::guarded_main(argc, argv, bench); }
