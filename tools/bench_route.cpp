// bench-route — the send side's routing cost with many subscriber sites.
//
// A hub publishes `customer` with --subscribe-by region; S sites subscribe to one
// region each (S regions); N customers are inserted (spread over the regions) and
// the hub's prepare pass — close the epoch, route the changes to every site, build
// the payloads — is timed (collect_changes_for_all, as the engine's prepare calls it;
// without encoding).
// Runs S = 10 (the baseline) and S = --sites (default 1000) in the same run and
// prints seconds, rows routed per second and the ratio. Goal (issue 11): the
// 10,000-site pass in at most 2x the time of the 10-site one.
//
// Usage: bench-route [--changes N] [--sites S] [--dir PATH]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "replication/changelog.h"
#include "replication/routing.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tools/bench_support.h"

namespace {

using sqlpost::bench::must;

using sqlpost::Database;
using Clock = std::chrono::steady_clock;

struct Figures {
  double seconds = 0;
  std::size_t routed = 0;  // changes placed in some site's payload
};

Figures run(const std::string& path, int sites, int changes) {
  std::filesystem::remove(path);
  Database db = must(Database::open(path, Database::Mode::kReadWriteCreate), "open");
  must(db.exec("CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, region TEXT)"), "schema");
  must(sqlpost::create_site_tables(db), "site tables");
  must(sqlpost::init_site(db, {"hq", "hq@x.test", sqlpost::Role::kConsolidated, ""}), "init");
  must(sqlpost::publish(db, {"sales", "customer", {}, "", "region", "incoming"}), "publish");
  for (int s = 0; s < sites; ++s) {
    const std::string name = "s" + std::to_string(s);
    must(sqlpost::add_partner(db, {name, name + "@x.test", sqlpost::Relation::kChild,
                                   std::vector<std::uint8_t>(32, 1), 0}),
         "site");
    must(sqlpost::subscribe(db, {name, "sales", "r" + std::to_string(s)}), "subscribe");
  }
  must(db.exec("BEGIN"), "begin");
  auto insert = must(db.prepare("INSERT INTO customer VALUES (?, 'name', ?)"), "prepare");
  for (int i = 0; i < changes; ++i) {
    insert.bind(1, std::int64_t{i}).bind(2, "r" + std::to_string(i % sites));
    must(insert.run(), "insert");
  }
  must(db.exec("COMMIT"), "commit");

  const auto start = Clock::now();
  const std::int64_t closed = must(sqlpost::cut_epoch(db), "cut epoch");
  Figures f;
  const auto partners = must(sqlpost::load_partners(db), "partners");
  for (const auto& [name, payload] :
       must(sqlpost::collect_changes_for_all(db, partners, closed), "route")) {
    f.routed += payload.change_count();
  }
  f.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return f;
}

}  // namespace

int bench(int argc, char** argv) {
  sqlpost::bench::program_name() = "bench-route";
  int changes = 100000;
  int sites = 1000;
  std::string dir = "/tmp/sqlpost-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--changes") {
      changes = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    } else if (flag == "--sites") {
      sites = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    } else if (flag == "--dir") {
      dir = argv[i + 1];
    }
  }
  std::filesystem::create_directories(dir);
  const Figures few = run(dir + "/route10.db", 10, changes);
  const Figures many = run(dir + "/route-many.db", sites, changes);
  std::printf("bench-route: %d changes, one region per site, subscribe-by region\n", changes);
  std::printf("%-12s %10s %14s %14s\n", "sites", "seconds", "rows routed", "routed rows/s");
  std::printf("%-12d %10.3f %14zu %14.0f\n", 10, few.seconds, few.routed,
              static_cast<double>(few.routed) / few.seconds);
  std::printf("%-12d %10.3f %14zu %14.0f\n", sites, many.seconds, many.routed,
              static_cast<double>(many.routed) / many.seconds);
  std::printf("time ratio %d/10 sites: %.1fx (goal <= 2x)\n", sites, many.seconds / few.seconds);
  return 0;
}

int main(int argc, char** argv) { return sqlpost::bench::guarded_main(argc, argv, bench); }
