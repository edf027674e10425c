// Row subsets over the fake lossy mail network: the field-sales scenario (a hub and
// three remotes, one region each), row moves, dependent tables and extraction.
#include <doctest/doctest.h>

#include <random>

#include "replication/changelog.h"
#include "replication/engine.h"
#include "replication/extract.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tests/cluster.h"
#include "tests/support.h"
#include "transport/codec.h"
#include "transport/fake_link.h"

using namespace sqlpost;        // NOLINT(google-build-using-namespace)
using namespace sqlpost::test;  // NOLINT(google-build-using-namespace)

namespace {

void must(const Result<>& r) { REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message)); }

// orders.region follows its customer's region through this hub trigger, so a
// customer's move moves its orders (docs/subsets.md, "Dependent tables").
constexpr const char* kSalesSchema =
    "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, region TEXT NOT NULL);"
    "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, region TEXT NOT "
    "NULL, amount INTEGER);";
constexpr const char* kFollowTrigger =
    "CREATE TRIGGER orders_follow_customer AFTER UPDATE OF region ON customer BEGIN "
    "UPDATE orders SET region = NEW.region WHERE customer_id = NEW.id; END;";

const std::vector<std::string> kRegions = {"east", "west", "north"};

struct SalesSite {
  std::string name;
  std::string region;  // empty at the hub
  std::string path;
  std::unique_ptr<Database> db;
  std::unique_ptr<transport::Link> link;
  std::int64_t next_id = 0;
};

class Sales {
 public:
  Sales(const TempDir& dir, std::uint64_t seed, transport::FaultConfig faults)
      : network_(seed, faults), rng_(seed) {
    auto hub = std::make_unique<Database>(open_db(dir.path("hq.db")));
    exec(*hub, kSalesSchema);
    exec(*hub, kFollowTrigger);
    must(create_site_tables(*hub));
    must(init_site(*hub, LocalSite{"hq", "hq@x.test", Role::kConsolidated, ""}));
    must(publish(*hub, Article{"sales", "customer", {}, "", "region", "incoming"}));
    must(publish(*hub, Article{"sales", "orders", {}, "", "region", "incoming"}));
    for (int i = 0; i < 6; ++i) {
      exec(*hub, "INSERT INTO customer VALUES (" + std::to_string(i + 1) + ", 'c" +
                     std::to_string(i + 1) + "', '" + kRegions[i % 3] + "');" +
                     "INSERT INTO orders VALUES (" + std::to_string(i + 1) + ", " +
                     std::to_string(i + 1) + ", '" + kRegions[i % 3] + "', 10);");
    }
    sites_.push_back(SalesSite{"hq", "", dir.path("hq.db"), std::move(hub),
                               network_.link_for("hq@x.test"), 1'000});
    for (std::size_t i = 0; i < kRegions.size(); ++i) {
      add_remote(dir, "r" + std::to_string(i + 1), kRegions[i], static_cast<std::int64_t>(i + 1));
    }
  }

  Database& hub() { return *sites_[0].db; }
  std::vector<SalesSite>& sites() { return sites_; }

  void round() {
    for (auto& s : sites_) {
      EngineOptions o;
      o.max_message_bytes = 8192;
      o.resend_timeout = 240;
      o.gap_patience = 120;
      o.resend_interval = 180;
      o.log_retention = 0;
      o.now = [this] { return clock_; };
      Engine engine(*s.db, *s.link, o);
      auto report = engine.run_once();
      REQUIRE_MESSAGE(report.ok(), s.name << ": " << report.error().message);
      for (const auto& p : report->problems) {
        FAIL_CHECK(s.name << ": " << p);
      }
    }
    network_.tick();
    clock_ += 60;
  }

  bool run_until_quiet(int max_rounds) {
    for (int i = 0; i < max_rounds; ++i) {
      round();
      if (quiet()) {
        return true;
      }
    }
    return false;
  }

  // Random work at a site on rows it holds: inserts, renames, amount changes,
  // deletes, and customers moving to another region (with their orders).
  void random_writes(SalesSite& s) {
    for (int i = 0; i < 3; ++i) {
      const auto customer = pick(s, "customer");
      switch (rng_() % 7) {
        case 0: insert_customer(s); break;
        case 1:
          if (customer) {
            exec(*s.db, "UPDATE customer SET name = '" + s.name + std::to_string(rng_() % 100) +
                            "' WHERE id = " + *customer);
          }
          break;
        case 2:
          if (customer) {
            exec(*s.db, "INSERT INTO orders SELECT " + std::to_string(s.next_id++) +
                            ", id, region, " + std::to_string(rng_() % 50) +
                            " FROM customer WHERE id = " + *customer);
          }
          break;
        case 3:
          if (auto order = pick(s, "orders")) {
            exec(*s.db, "UPDATE orders SET amount = amount + 1 WHERE id = " + *order);
          }
          break;
        case 4:
          if (auto order = pick(s, "orders")) {
            exec(*s.db, "DELETE FROM orders WHERE id = " + *order);
          }
          break;
        case 5:
          if (customer) {  // a move: at the hub the trigger moves the orders too
            exec(*s.db, "UPDATE customer SET region = '" + kRegions[rng_() % 3] +
                            "' WHERE id = " + *customer);
          }
          break;
        default:
          if (customer) {
            exec(*s.db, "DELETE FROM orders WHERE customer_id = " + *customer +
                            "; DELETE FROM customer WHERE id = " + *customer);
          }
      }
    }
  }

  // Each remote holds exactly the hub's rows of its region.
  std::string differences() {
    std::string out;
    for (std::size_t i = 1; i < sites_.size(); ++i) {
      for (const char* table : {"customer", "orders"}) {
        const std::string sql = std::string("SELECT * FROM ") + table + " WHERE region = '" +
                                sites_[i].region + "' ORDER BY id";
        const std::string all = std::string("SELECT * FROM ") + table + " ORDER BY id";
        if (rows(hub(), sql) != rows(*sites_[i].db, all)) {
          out += sites_[i].name + "." + table + ": hub has [" + rows(hub(), sql) +
                 "], the remote [" + rows(*sites_[i].db, all) + "]\n";
        }
      }
    }
    return out;
  }

 private:
  void add_remote(const TempDir& dir, const std::string& name, const std::string& region,
                  std::int64_t n) {
    std::vector<std::uint8_t> key(32);
    for (auto& b : key) {
      b = static_cast<std::uint8_t>(rng_());
    }
    const std::string address = name + "@x.test";
    must(add_partner(hub(), Partner{name, address, Relation::kChild, key, 0}));
    must(subscribe(hub(), Subscription{name, "sales", region}));
    const std::string path = dir.path(name + ".db");
    auto extracted = extract_site(hub(), name, path);
    REQUIRE_MESSAGE(extracted.ok(), (extracted.ok() ? "" : extracted.error().message));
    sites_.push_back(SalesSite{name, region, path, std::make_unique<Database>(open_db(path)),
                               network_.link_for(address), n * 1'000'000});
  }

  void insert_customer(SalesSite& s) {
    const std::string region = s.region.empty() ? kRegions[rng_() % 3] : s.region;
    exec(*s.db, "INSERT INTO customer VALUES (" + std::to_string(s.next_id++) + ", 'new', '" +
                    region + "')");
  }

  std::optional<std::string> pick(SalesSite& s, const std::string& table) {
    const auto n = query_int(*s.db, "SELECT count(*) FROM " + table);
    if (n == 0) {
      return std::nullopt;
    }
    return std::to_string(query_int(*s.db, "SELECT id FROM " + table +
                                               " ORDER BY id LIMIT 1 "
                                               "OFFSET " +
                                               std::to_string(rng_() % n)));
  }

  static std::string rows(Database& db, const std::string& sql) {
    auto st = db.prepare(sql).value();
    std::string out;
    while (st.step().value()) {
      for (int i = 0; i < st.column_count(); ++i) {
        out += st.column(i).debug_string() + (i + 1 < st.column_count() ? "," : ";");
      }
    }
    return out;
  }

  bool quiet() {
    if (network_.in_flight() > 0) {
      return false;
    }
    for (auto& s : sites_) {
      for (const auto& mail : network_.mailbox(s.name + "@x.test")) {
        if (transport::looks_like_sqlpost(mail)) {
          return false;
        }
      }
      if (!delivery_idle(*s.db)) {
        return false;
      }
    }
    return true;
  }

  std::vector<SalesSite> sites_;
  transport::FakeNetwork network_;
  std::mt19937_64 rng_;
  std::int64_t clock_ = 1'000'000;
};

}  // namespace

TEST_SUITE_BEGIN("subsets");

TEST_CASE("a column subset: unpublished columns never leave the hub, not even at extraction") {
  TempDir dir;
  Database hub = open_db(dir.path("hq.db"));
  exec(hub,
       "CREATE TABLE staff(id INTEGER PRIMARY KEY, name TEXT, salary INTEGER);"
       "INSERT INTO staff VALUES (1, 'Ada', 5000);");
  must(create_site_tables(hub));
  must(init_site(hub, LocalSite{"hq", "hq@x.test", Role::kConsolidated, ""}));
  must(publish(hub, Article{"hr", "staff", {"id", "name"}, "", "", "incoming"}));
  must(add_partner(
      hub, Partner{"shop", "shop@x.test", Relation::kChild, std::vector<std::uint8_t>(32, 7), 0}));
  must(subscribe(hub, Subscription{"shop", "hr", ""}));
  REQUIRE(extract_site(hub, "shop", dir.path("shop.db")).ok());
  Database shop = open_db(dir.path("shop.db"));
  CHECK(query_int(shop, "SELECT count(*) FROM staff WHERE name = 'Ada'") == 1);
  CHECK(query_int(shop,
                  "SELECT count(*) FROM pragma_table_info('staff') WHERE name = "
                  "'salary'") == 0);  // the table has only the published columns
}

TEST_CASE("extraction reads a --where subquery against the hub's rows, in either journal mode") {
  for (const std::string mode : {"DELETE", "WAL"}) {
    CAPTURE(mode);
    TempDir dir;
    Database hub = open_db(dir.path("hq.db"));
    exec(hub, "PRAGMA journal_mode = " + mode);
    exec(hub,
         "CREATE TABLE customer(id INTEGER PRIMARY KEY, region TEXT, vip INTEGER);"
         "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER, amount INTEGER);"
         "INSERT INTO customer VALUES (1, 'east', 1), (2, 'east', 0), (3, 'west', 1);"
         "INSERT INTO orders VALUES (10, 1, 5), (11, 2, 6), (12, 3, 7), (13, 3, 8);");
    must(create_site_tables(hub));
    must(init_site(hub, LocalSite{"hq", "hq@x.test", Role::kConsolidated, ""}));
    must(publish(hub, Article{"p", "customer", {}, "region = 'east'", "", "incoming"}));
    // The orders of every VIP customer, the west one included: the subquery must see
    // the hub's customers, not the east ones the new file holds.
    must(publish(hub, Article{"p",
                              "orders",
                              {},
                              "customer_id IN (SELECT id FROM customer WHERE vip = 1)",
                              "",
                              "incoming"}));
    must(add_partner(hub, Partner{"shop", "shop@x.test", Relation::kChild,
                                  std::vector<std::uint8_t>(32, 7), 0}));
    must(subscribe(hub, Subscription{"shop", "p", ""}));
    const auto extracted = extract_site(hub, "shop", dir.path("shop.db"));
    REQUIRE_MESSAGE(extracted.ok(), (extracted.ok() ? "" : extracted.error().message));
    CHECK(extracted->rows == 5);
    Database shop = open_db(dir.path("shop.db"));
    CHECK(
        query_int(shop, "SELECT group_concat(id, '') FROM (SELECT id FROM customer ORDER BY id)") ==
        12);
    CHECK(query_int(shop, "SELECT count(*) FROM orders WHERE id IN (10, 12, 13)") == 3);
    CHECK(query_int(shop, "SELECT count(*) FROM orders") == 3);
    CHECK(run_command("sqlite3 " + shell_quote(dir.path("shop.db")) + " 'PRAGMA integrity_check'")
              .output == "ok\n");
  }
}

TEST_CASE("extraction takes exactly the subscribed rows") {
  TempDir dir;
  Sales sales(dir, 1, {});
  for (std::size_t i = 1; i < sales.sites().size(); ++i) {
    Database& remote = *sales.sites()[i].db;
    CHECK(query_int(remote, "SELECT count(*) FROM customer") == 2);
    CHECK(query_int(remote, "SELECT count(DISTINCT region) FROM orders") == 1);
  }
  CHECK(sales.differences().empty());
}

TEST_CASE("a move arrives as a delete where the row leaves and an insert where it enters") {
  TempDir dir;
  Sales sales(dir, 2, {});
  exec(sales.hub(), "UPDATE customer SET region = 'west' WHERE id = 1");  // east -> west
  REQUIRE(sales.run_until_quiet(20));
  CHECK(sales.differences().empty());
  Database& east = *sales.sites()[1].db;
  Database& west = *sales.sites()[2].db;
  CHECK(query_int(east, "SELECT count(*) FROM customer WHERE id = 1") == 0);
  CHECK(query_int(east, "SELECT count(*) FROM orders WHERE customer_id = 1") == 0);  // followed
  CHECK(query_int(west, "SELECT count(*) FROM customer WHERE id = 1 AND name = 'c1'") == 1);
  CHECK(query_int(west, "SELECT count(*) FROM orders WHERE customer_id = 1") == 1);
}

TEST_CASE("a remote's own move out of its subset: applied at the hub, gone at the remote") {
  TempDir dir;
  Sales sales(dir, 3, {});
  Database& east = *sales.sites()[1].db;
  exec(east, "UPDATE customer SET region = 'north' WHERE id = 1");
  REQUIRE(sales.run_until_quiet(20));
  CHECK(sales.differences().empty());
  CHECK(query_int(sales.hub(),
                  "SELECT count(*) FROM customer WHERE id = 1 AND region = "
                  "'north'") == 1);
  CHECK(query_int(east, "SELECT count(*) FROM customer WHERE id = 1") == 0);
  CHECK(query_int(*sales.sites()[3].db, "SELECT count(*) FROM orders WHERE customer_id = 1") == 1);
}

TEST_CASE("field sales: random work everywhere, moves included, 20 lossy seeds") {
  transport::FaultConfig faults;
  faults.drop = 0.1;
  faults.duplicate = 0.1;
  faults.reorder = 0.3;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    TempDir dir;
    Sales sales(dir, seed, faults);
    for (int round = 0; round < 10; ++round) {
      for (auto& s : sales.sites()) {
        sales.random_writes(s);
      }
      sales.round();
    }
    REQUIRE_MESSAGE(sales.run_until_quiet(400), "not quiet");
    const std::string diff = sales.differences();
    CHECK_MESSAGE(diff.empty(), diff);
  }
}

TEST_SUITE_END();
