// bench-lock — how long the agent waits to cut an epoch while an application
// commits small transactions back to back.
//
// A child process commits one-row transactions with no pause between them (its
// connection uses sqlite3_busy_timeout(5000), as a typical application does).
// The agent cuts epochs, alternating cut by cut between two ways of waiting for
// the write lock, so both see the same load:
//   sqlite    sqlite3_busy_timeout (SQLite's own handler; the baseline)
//   sqlpost   sqlpost's polling handler (schema/db.cpp)
// Each cut may wait at most --lock-wait seconds. Prints, per way, the median,
// 90th percentile and longest wait and how many cuts gave up.
//
// Usage: bench-lock [--cuts N] [--lock-wait SECONDS] [--journal delete|wal] [--dir PATH]
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "replication/changelog.h"
#include "schema/db.h"
#include "schema/metadata.h"
#include "schema/migrations.h"

namespace {

using sqlpost::Database;

struct Options {
  int cuts = 20;
  int lock_wait_seconds = 10;
  std::string journal = "delete";
  std::string dir = "/tmp/sqlpost-bench-lock";
};

struct Waits {
  std::vector<double> seconds;
  int gave_up = 0;
};

[[noreturn]] void die(const std::string& what) {
  (void)std::fprintf(stderr, "bench-lock: %s\n", what.c_str());
  std::exit(1);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
}

Options parse(int argc, char** argv) {
  Options o;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--cuts") {
      o.cuts = std::stoi(args[i + 1]);
    } else if (args[i] == "--lock-wait") {
      o.lock_wait_seconds = std::stoi(args[i + 1]);
    } else if (args[i] == "--journal") {
      o.journal = args[i + 1];
    } else if (args[i] == "--dir") {
      o.dir = args[i + 1];
    } else {
      die("unknown option " + args[i]);
    }
  }
  return o;
}

Database open_or_die(const std::string& path) {
  auto db = Database::open(path, Database::Mode::kReadWriteCreate);
  if (!db.ok()) {
    die(db.error().message);
  }
  return std::move(db).value();
}

void make_site(const std::string& path, const std::string& journal) {
  std::filesystem::remove(path);
  Database db = open_or_die(path);
  const bool ok =
      db.exec("PRAGMA journal_mode = " + journal).ok() &&
      db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)").ok() &&
      sqlpost::create_site_tables(db).ok() &&
      sqlpost::init_site(db, sqlpost::LocalSite{"hq", "hq@x", sqlpost::Role::kConsolidated, ""})
          .ok() &&
      sqlpost::publish(db, sqlpost::Article{"p", "t", {}, "", "", "incoming"}).ok();
  if (!ok) {
    die("cannot make the site database");
  }
}

// The application: one-row transactions back to back until the pipe closes.
int write_until_closed(const std::string& path, int stop_fd, int ready_fd) {
  Database db = open_or_die(path);
  sqlite3_busy_timeout(db.handle(), 5000);
  std::int64_t n = 0;
  for (;;) {
    std::array<char, 1> byte{};
    if (read(stop_fd, byte.data(), 1) == 0) {
      return 0;  // the agent closed the pipe: done
    }
    const std::string sql =
        "BEGIN; INSERT INTO t(v) VALUES ('row " + std::to_string(++n) + "'); COMMIT;";
    constexpr std::int64_t kWarmUp = 50;
    if (n == kWarmUp) {  // the agent starts cutting once the application is in full swing
      const char byte_ready = 'r';
      (void)write(ready_fd, &byte_ready, 1);
      close(ready_fd);
    }
    if (auto done = db.exec(sql); !done.ok()) {
      (void)std::fprintf(stderr, "bench-lock: application: %s\n", done.error().message.c_str());
      (void)db.exec("ROLLBACK");
    }
  }
}

double one_cut(Database& agent, Waits& waits) {
  const auto start = std::chrono::steady_clock::now();
  const auto cut = sqlpost::cut_epoch(agent);
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!cut.ok()) {
    ++waits.gave_up;
  }
  waits.seconds.push_back(took);
  return took;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1));
  return values[index];
}

void print(const char* name, const Waits& waits) {
  std::printf("%-8s  %10.4f  %10.4f  %10.4f  %7d of %zu\n", name, percentile(waits.seconds, 0.5),
              percentile(waits.seconds, 0.9), percentile(waits.seconds, 1.0), waits.gave_up,
              waits.seconds.size());
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::filesystem::create_directories(o.dir);
  const std::string path = o.dir + "/site.db";
  make_site(path, o.journal);

  std::array<int, 2> stop{};
  std::array<int, 2> ready{};
  if (pipe(stop.data()) != 0 || pipe(ready.data()) != 0) {
    die("pipe failed");
  }
  const pid_t child = fork();
  if (child == 0) {
    close(stop[1]);
    close(ready[0]);
    // The application never blocks on the pipe: it only notices its end.
    (void)fcntl(stop[0], F_SETFL, O_NONBLOCK);  // NOLINT(cppcoreguidelines-pro-type-vararg)
    _exit(write_until_closed(path, stop[0], ready[1]));
  }
  close(stop[0]);
  close(ready[1]);
  std::array<char, 1> started{};
  if (read(ready[0], started.data(), 1) != 1) {
    die("the application process did not start");
  }

  Database sqlite_way = open_or_die(path);
  sqlite3_busy_timeout(sqlite_way.handle(), o.lock_wait_seconds * 1000);
  Database sqlpost_way = open_or_die(path);
  sqlpost_way.set_lock_wait(std::chrono::seconds(o.lock_wait_seconds));
  Waits sqlite_waits;
  Waits sqlpost_waits;
  for (int i = 0; i < o.cuts; ++i) {
    one_cut(sqlite_way, sqlite_waits);
    one_cut(sqlpost_way, sqlpost_waits);
  }
  close(stop[1]);
  int status = 0;
  waitpid(child, &status, 0);

  Database check = open_or_die(path);
  const auto rows = check.query_int("SELECT count(*) FROM t");
  std::printf(
      "bench-lock: %d cuts each way, journal=%s, lock wait %d s, the application "
      "committed %lld one-row transactions meanwhile\n",
      o.cuts, o.journal.c_str(), o.lock_wait_seconds,
      static_cast<long long>(rows.ok() ? rows.value() : -1));
  std::printf("%-8s  %10s  %10s  %10s  %s\n", "wait", "median s", "p90 s", "max s", "gave up");
  print("sqlite", sqlite_waits);
  print("sqlpost", sqlpost_waits);
  return 0;
}
