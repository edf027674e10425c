// bench-capture — what change capture costs an application's writes.
//
// Measures, in one run on one machine, per-row prepared INSERTs, UPDATEs and
// DELETEs of N rows in one transaction on an 8-column table, in four set-ups:
//   plain     no capture (the baseline)
//   session   SQLite's session extension recording a changeset (a reference)
//   json      a naive trigger writing json_object() rows (a reference)
//   sqlpost   sqlpost's generated capture triggers
// and prints rows/s for each and the ratio of each to plain. Each figure is
// the best of --repeat runs on a fresh database file.
//
// Usage: bench-capture [--rows N] [--repeat R] [--dir PATH]
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "schema/db.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tools/bench_support.h"

namespace {

using sqlpost::bench::must;

using sqlpost::Database;
using sqlpost::Statement;

constexpr const char* kSchema =
    "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, price REAL, "
    "note TEXT, flag INTEGER, data BLOB, ts INTEGER)";

struct Options {
  int rows = 100000;
  int repeat = 3;
  std::string dir = "/tmp/sqlpost-bench";
};

struct SessionDeleter {
  void operator()(sqlite3_session* s) const { sqlite3session_delete(s); }
};
using SessionPtr = std::unique_ptr<sqlite3_session, SessionDeleter>;

struct FreeDeleter {
  void operator()(void* p) const { sqlite3_free(p); }
};

enum class Setup { kPlain, kSession, kJson, kSqlpost };
const char* setup_name(Setup s) {
  switch (s) {
    case Setup::kPlain: return "plain";
    case Setup::kSession: return "session";
    case Setup::kJson: return "json";
    case Setup::kSqlpost: return "sqlpost";
  }
  return "?";
}

void install_json_trigger(Database& db) {
  const std::string cols =
      "'id', X.id, 'name', X.name, 'qty', X.qty, 'price', X.price, 'note', X.note, 'flag', "
      "X.flag, 'data', hex(X.data), 'ts', X.ts";
  auto image = [&](const char* side) {
    std::string s = cols;
    for (std::size_t p = s.find("X."); p != std::string::npos; p = s.find("X.", p)) {
      s.replace(p, 1, side);
    }
    return "json_object(" + s + ")";
  };
  must(db.exec("CREATE TABLE jlog(seq INTEGER PRIMARY KEY, tbl TEXT, op TEXT, new TEXT, old "
               "TEXT)"),
       "json log");
  must(db.exec("CREATE TRIGGER ji AFTER INSERT ON item BEGIN INSERT INTO jlog(tbl, op, new) "
               "VALUES ('item', 'I', " +
               image("NEW") + "); END"),
       "json trigger");
  must(db.exec("CREATE TRIGGER ju AFTER UPDATE ON item BEGIN INSERT INTO jlog(tbl, op, new, old) "
               "VALUES ('item', 'U', " +
               image("NEW") + ", " + image("OLD") + "); END"),
       "json trigger");
  must(db.exec("CREATE TRIGGER jd AFTER DELETE ON item BEGIN INSERT INTO jlog(tbl, op, old) "
               "VALUES ('item', 'D', " +
               image("OLD") + "); END"),
       "json trigger");
}

Database fresh_database(const Options& o, Setup setup) {
  const std::string path = o.dir + "/bench-" + setup_name(setup) + ".db";
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-journal");
  Database db = must(Database::open(path, Database::Mode::kReadWriteCreate), "open");
  must(db.exec(kSchema), "schema");
  if (setup == Setup::kJson) {
    install_json_trigger(db);
  }
  if (setup == Setup::kSqlpost) {
    must(db.exec("BEGIN"), "begin");
    must(sqlpost::create_site_tables(db), "site tables");
    must(sqlpost::init_site(db, {"bench", "bench@localhost", sqlpost::Role::kConsolidated, ""}),
         "init");
    must(sqlpost::publish(db, {"p", "item", {}, "", "", "incoming"}), "publish");
    must(db.exec("COMMIT"), "commit");
  }
  return db;
}

std::vector<std::uint8_t> blob_for(int i) {
  std::vector<std::uint8_t> b(24);
  for (std::size_t k = 0; k < b.size(); ++k) {
    b[k] = static_cast<std::uint8_t>(i * 31 + static_cast<int>(k));
  }
  return b;
}

void bind_row(Statement& st, int i, int version) {
  st.bind(1, std::string_view("item name " + std::to_string(i)));
  st.bind(2, std::int64_t{i % 1000} + version);
  st.bind(3, sqlpost::Value(i * 0.25 + version));
  st.bind(4, std::string_view(version == 0 ? "first note" : "changed note"));
  st.bind(5, static_cast<std::int64_t>(i & 1));
  st.bind(6, sqlpost::Value(sqlpost::Blob{blob_for(i + version)}));
  st.bind(7, std::int64_t{1700000000} + i);
}

using Phase = std::function<void(Database&, int rows)>;

void insert_rows(Database& db, int rows) {
  Statement st = must(db.prepare("INSERT INTO item(name, qty, price, note, flag, data, ts, id) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                      "prepare insert");
  for (int i = 1; i <= rows; ++i) {
    bind_row(st, i, 0);
    st.bind(8, static_cast<std::int64_t>(i));
    must(st.run(), "insert");
  }
}

void update_rows(Database& db, int rows) {
  Statement st = must(db.prepare("UPDATE item SET name = ?, qty = ?, price = ?, note = ?, flag = "
                                 "?, data = ?, ts = ? WHERE id = ?"),
                      "prepare update");
  for (int i = 1; i <= rows; ++i) {
    bind_row(st, i, 1);
    st.bind(8, static_cast<std::int64_t>(i));
    must(st.run(), "update");
  }
}

void delete_rows(Database& db, int rows) {
  Statement st = must(db.prepare("DELETE FROM item WHERE id = ?"), "prepare delete");
  for (int i = 1; i <= rows; ++i) {
    st.bind(1, static_cast<std::int64_t>(i));
    must(st.run(), "delete");
  }
}

// Runs the three phases once; returns seconds per phase.
std::vector<double> run_once(const Options& o, Setup setup) {
  Database db = fresh_database(o, setup);
  SessionPtr session;
  if (setup == Setup::kSession) {
    sqlite3_session* raw = nullptr;
    if (sqlite3session_create(db.handle(), "main", &raw) != SQLITE_OK) {
      (void)std::fprintf(stderr, "bench-capture: the session extension is not available\n");
      std::exit(1);
    }
    session.reset(raw);
    if (sqlite3session_attach(raw, "item") != SQLITE_OK) {
      sqlpost::bench::die("session", "cannot attach table item");
    }
  }
  const std::vector<Phase> phases = {insert_rows, update_rows, delete_rows};
  std::vector<double> seconds;
  for (const auto& phase : phases) {
    const auto start = std::chrono::steady_clock::now();
    must(db.exec("BEGIN"), "begin");
    phase(db, o.rows);
    if (session) {  // the changeset is what the session extension would ship
      int size = 0;
      void* raw = nullptr;
      sqlite3session_changeset(session.get(), &size, &raw);
      std::unique_ptr<void, FreeDeleter> changeset(raw);
    }
    must(db.exec("COMMIT"), "commit");
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return seconds;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rows") {
      o.rows = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    } else if (flag == "--repeat") {
      o.repeat = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
    } else if (flag == "--dir") {
      o.dir = argv[i + 1];
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  sqlpost::bench::program_name() = "bench-capture";
  const Options o = parse(argc, argv);
  std::filesystem::create_directories(o.dir);
  const std::vector<Setup> setups = {Setup::kPlain, Setup::kSession, Setup::kJson, Setup::kSqlpost};
  std::map<Setup, std::vector<double>> best;
  for (int r = 0; r < o.repeat; ++r) {  // interleaved so drift hits every set-up alike
    for (const Setup s : setups) {
      const auto seconds = run_once(o, s);
      auto& b = best[s];
      b.resize(seconds.size(), 1e300);
      for (std::size_t p = 0; p < seconds.size(); ++p) {
        b[p] = std::min(b[p], seconds[p]);
      }
    }
  }
  const std::array<const char*, 3> phases = {"INSERT", "UPDATE", "DELETE"};
  std::printf("bench-capture: %d rows per phase, one transaction, best of %d, sqlite %s\n", o.rows,
              o.repeat, sqlite3_libversion());
  std::printf("%-7s %14s %14s %7s %14s %7s %14s %7s\n", "phase", "plain rows/s", "session rows/s",
              "ratio", "json rows/s", "ratio", "sqlpost rows/s", "ratio");
  for (std::size_t p = 0; p < phases.size(); ++p) {
    const double plain = best[Setup::kPlain][p];
    std::printf("%-7s %14.0f", phases[p], o.rows / plain);
    for (const Setup s : {Setup::kSession, Setup::kJson, Setup::kSqlpost}) {
      const double t = best[s][p];
      std::printf(" %14.0f %6.2fx", o.rows / t, t / plain);
    }
    std::printf("\n");
  }
  std::printf(
      "ratio = time with capture / time without (lower is better; goal for sqlpost <= "
      "1.5x)\n");
  return 0;
}
