// sqlpost/tests/cluster.h — a hub and its remotes wired to one mail network,
// for protocol tests: random writes, agent rounds, and the convergence oracle.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "replication/engine.h"
#include "schema/db.h"
#include "tests/support.h"
#include "transport/fake_link.h"

namespace sqlpost::test {

inline constexpr const char* kClusterSchema =
    "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, data BLOB);"
    "CREATE TABLE tag(item_id INTEGER, label TEXT, note, PRIMARY KEY (item_id, label)) "
    "WITHOUT ROWID;";
inline const std::vector<std::string> kClusterTables = {"item", "tag"};

struct Site {
  std::string name;
  std::string path;
  std::unique_ptr<Database> db;
  std::unique_ptr<transport::Link> link;
  std::int64_t next_id = 0;  // this site writes ids from its own range
  std::size_t messages_applied = 0;
};

// Nothing in the outbox or inbox, no ack or resend owed, no change left to send.
bool delivery_idle(Database& db);

class Cluster {
 public:
  // A hub "hq" with remotes r1..rN, every remote subscribed to everything.
  Cluster(const TempDir& dir, int remotes, std::uint64_t seed, transport::FaultConfig faults);

  std::vector<Site>& sites() { return sites_; }
  Site& site(const std::string& name);
  transport::FakeNetwork& network() { return network_; }
  EngineOptions options();
  std::int64_t& clock() { return clock_; }
  std::int64_t log_retention = 0;        // prune as soon as every partner acknowledged
  std::int64_t resend_timeout = 240;     // 4 rounds
  std::size_t max_message_bytes = 8192;  // small, so messages are split into parts
  // Tables published while the cluster runs: compared too once every site has them.
  std::vector<std::string> published_later;

  // A few random transactions at a site (inserts, updates and deletes of its own rows).
  void random_writes(Site& site, int transactions);
  // One agent run (receive, apply, prepare, send) at one site, nothing else.
  void run(Site& site, const std::function<bool(std::string_view)>& crash_at = {});
  // One agent run at every site, then one network tick and a clock step.
  void round(const std::function<bool(std::string_view)>& crash_at = {});
  // Runs rounds until nothing is left to deliver; false if max_rounds ran out.
  bool run_until_quiet(int max_rounds);
  // Empty when every remote equals the hub row by row and integrity checks pass.
  std::string differences();
  // Messages applied in total equal the applied sequence numbers, less the numbers
  // a partner skipped after a restore (nothing twice).
  std::string applied_twice();

 private:
  bool quiet();
  std::vector<Site> sites_;
  transport::FakeNetwork network_;
  std::mt19937_64 rng_;
  std::int64_t clock_ = 1'000'000;
};

}  // namespace sqlpost::test
