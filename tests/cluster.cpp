#include "tests/cluster.h"

#include <doctest/doctest.h>

#include "replication/changelog.h"
#include "replication/extract.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "transport/codec.h"

#include <algorithm>

namespace sqlpost::test {
namespace {

constexpr std::int64_t kRangePerSite = 1'000'000;
constexpr std::int64_t kStep = 60;

void must(const Result<>& r) { REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message)); }

Value random_value(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0: return {};
    case 1: return {static_cast<std::int64_t>(rng())};  // full 64-bit range
    case 2: return {static_cast<double>(rng() % 100000) / 7.0};
    case 3: return Value::text("t\xc3\xa9xt " + std::to_string(rng() % 1000));
    case 4: return Value(Blob{std::vector<std::uint8_t>(rng() % 40, 0xA5)});
    default: return {-0.0};
  }
}

}  // namespace

Cluster::Cluster(const TempDir& dir, int remotes, std::uint64_t seed, transport::FaultConfig faults)
    : network_(seed, faults), rng_(seed) {
  // As the file link: a site's mail is posted at the flush that ends its send pass,
  // and a crash before the flush loses it (the link is made again below).
  network_.hold_until_flush();
  const std::string hub_path = dir.path("hq.db");
  auto hub = std::make_unique<Database>(open_db(hub_path));
  exec(*hub, kClusterSchema);
  must(create_site_tables(*hub));
  must(init_site(*hub, LocalSite{"hq", "hq@hq.test", Role::kConsolidated, ""}));
  must(publish(*hub, Article{"all", "item", {}, "", "", "incoming"}));
  must(publish(*hub, Article{"all", "tag", {}, "", "", "incoming"}));
  for (int i = 1; i <= remotes; ++i) {
    const std::string name = "r" + std::to_string(i);
    std::vector<std::uint8_t> key(32);
    for (auto& b : key) {
      b = static_cast<std::uint8_t>(rng_());
    }
    must(add_partner(
        *hub, Partner{name, (name + "@").append(name).append(".test"), Relation::kChild, key, 0}));
    must(subscribe(*hub, Subscription{name, "all", ""}));
  }
  sites_.push_back(Site{"hq", hub_path, std::move(hub), network_.link_for("hq@hq.test"), 0, 0});
  for (int i = 1; i <= remotes; ++i) {
    const std::string name = "r" + std::to_string(i);
    const std::string path = dir.path(name + ".db");
    auto extracted = extract_site(*sites_[0].db, name, path);
    REQUIRE_MESSAGE(extracted.ok(), (extracted.ok() ? "" : extracted.error().message));
    sites_.push_back(Site{name, path, std::make_unique<Database>(open_db(path)),
                          network_.link_for((name + "@").append(name).append(".test")), 0, 0});
  }
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    sites_[i].next_id = static_cast<std::int64_t>(i) * kRangePerSite + 1;
  }
}

Site& Cluster::site(const std::string& name) {
  for (auto& s : sites_) {
    if (s.name == name) {
      return s;
    }
  }
  FAIL("no site " << name);
  return sites_.front();
}

EngineOptions Cluster::options() {
  EngineOptions o;
  o.max_message_bytes = max_message_bytes;
  o.resend_timeout = resend_timeout;
  o.gap_patience = 2 * kStep;
  o.resend_interval = 3 * kStep;
  o.log_retention = log_retention;
  o.now = [this] { return clock_; };
  return o;
}

void Cluster::random_writes(Site& site, int transactions) {
  Database& db = *site.db;
  const std::int64_t base = (site.next_id - 1) / kRangePerSite * kRangePerSite;
  for (int t = 0; t < transactions; ++t) {
    exec(db, "BEGIN");
    const int rows = 1 + static_cast<int>(rng_() % 4);
    for (int r = 0; r < rows; ++r) {
      const std::int64_t own = site.next_id - base - 1;
      const auto pick = [&] { return base + 1 + static_cast<std::int64_t>(rng_() % (own + 1)); };
      switch (rng_() % 5) {
        case 0:
        case 1: {
          auto st = db.prepare("INSERT INTO item VALUES (?, ?, ?, ?, ?)").value();
          st.bind(1, site.next_id++).bind(2, random_value(rng_)).bind(3, random_value(rng_));
          st.bind(4, random_value(rng_)).bind(5, random_value(rng_));
          must(st.run());
          break;
        }
        case 2: {
          auto st = db.prepare("UPDATE item SET qty = ?, name = ? WHERE id = ?").value();
          st.bind(1, random_value(rng_)).bind(2, random_value(rng_)).bind(3, pick());
          must(st.run());
          break;
        }
        case 3: {
          auto st = db.prepare("DELETE FROM item WHERE id = ?").value();
          st.bind(1, pick());
          must(st.run());
          break;
        }
        default: {
          auto st = db.prepare("INSERT OR REPLACE INTO tag VALUES (?, ?, ?)").value();
          st.bind(1, pick()).bind(2, std::string_view(rng_() % 2 ? "red" : "blue"));
          st.bind(3, random_value(rng_));
          must(st.run());
        }
      }
    }
    exec(db, "COMMIT");
  }
}

void Cluster::run(Site& s, const std::function<bool(std::string_view)>& crash_at) {
  EngineOptions o = options();
  o.crash_at = crash_at;
  Engine engine(*s.db, *s.link, o);
  RunReport report;  // outlives a crash, so applications are always counted
  Result<> step = engine.receive(report);
  if (step.ok()) {
    step = engine.apply(report);
  }
  if (step.ok()) {
    step = engine.prepare(report);
  }
  if (step.ok()) {
    step = engine.send(report);
  }
  s.messages_applied += report.messages_applied;
  if (!step.ok()) {
    // An injected crash: the process "died"; the next round is a new process.
    CHECK_MESSAGE(step.error().message.find("injected crash") != std::string::npos,
                  s.name << ": " << step.error().message);
    s.db = std::make_unique<Database>(open_db(s.path));
    s.link = network_.link_for(s.name + "@" + s.name + ".test");  // mail not flushed is lost
  }
}

void Cluster::round(const std::function<bool(std::string_view)>& crash_at) {
  for (auto& s : sites_) {
    run(s, crash_at);
  }
  network_.tick();
  clock_ += kStep;
}

bool Cluster::quiet() {
  if (network_.in_flight() > 0) {
    return false;
  }
  for (auto& s : sites_) {
    const auto mails =
        network_.mailbox(s.name == "hq" ? "hq@hq.test" : s.name + "@" + s.name + ".test");
    if (std::any_of(mails.begin(), mails.end(), transport::looks_like_sqlpost)) {
      return false;  // foreign mail stays in the mailbox for ever, by design
    }
    if (!delivery_idle(*s.db)) {
      return false;
    }
  }
  return true;
}

bool delivery_idle(Database& db) {
  const auto pending = query_int(db,
                                 "SELECT (SELECT count(*) FROM sqlpost_outbox) + "
                                 "(SELECT count(*) FROM sqlpost_inbox) + (SELECT "
                                 "count(*) FROM sqlpost_streams WHERE ack_owed OR "
                                 "resend_from IS NOT NULL)");
  if (pending > 0) {
    return false;
  }
  for (const auto& p : load_partners(db).value()) {
    if (count_unsent_changes(db, p).value() > 0) {
      return false;
    }
  }
  return true;
}

bool Cluster::run_until_quiet(int max_rounds) {
  for (int i = 0; i < max_rounds; ++i) {
    round();
    if (quiet()) {
      return true;
    }
  }
  return false;
}

std::string Cluster::differences() {
  std::string out;
  for (auto& s : sites_) {
    auto check = s.db->prepare("PRAGMA integrity_check").value();
    REQUIRE(check.step().value());
    if (check.column_text(0) != "ok") {
      out += s.name + ": integrity_check: " + check.column_text(0) + "\n";
    }
    if (s.name == "hq") {
      continue;
    }
    std::vector<std::string> tables = kClusterTables;
    tables.insert(tables.end(), published_later.begin(), published_later.end());
    for (const auto& table : tables) {
      const std::string diff = compare_tables(*sites_[0].db, *s.db, table);
      if (!diff.empty()) {
        out += s.name + " vs hq: " + diff + "\n";
      }
    }
  }
  return out;
}

std::string Cluster::applied_twice() {
  std::string out;
  for (auto& s : sites_) {
    const auto applied = query_int(*s.db,
                                   "SELECT ifnull(sum(applied_seq - skipped), 0) FROM "
                                   "sqlpost_streams");
    if (applied != static_cast<std::int64_t>(s.messages_applied)) {
      out += s.name + ": " + std::to_string(s.messages_applied) + " applications for " +
             std::to_string(applied) + " messages\n";
    }
  }
  return out;
}

}  // namespace sqlpost::test
