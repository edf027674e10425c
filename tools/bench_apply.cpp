// bench-apply — what it costs to ship and apply changes, against SQLite's own
// session extension measured in the same run.
//
// For N changed rows of an 8-column table (one scenario of INSERTs, one of
// UPDATEs of two columns), prints:
//   build   rows/s to read the change log, route, encode the payload, compress,
//           seal and MIME-encode the e-mails (sqlpost's send side);
//   apply   rows/s to open, reassemble, decode and apply the message at a
//           replica, next to sqlite3changeset_apply() of the session changeset
//           of the same changes on an identical replica (capture triggers
//           installed on both replicas);
//   bytes   e-mail bytes per changed row, next to the session changeset
//           compressed (zstd, same level) and base64-encoded.
// Each figure is the best of --repeat runs.
//
// --clock cpu times each phase by the thread's CPU time instead of the wall clock:
// on a machine busy with other work the wall clock measures the scheduler, and the
// CPU time still compares like with like (both sides run the same kind of work).
//
// Usage: bench-apply [--rows N] [--repeat R] [--dir PATH] [--clock wall|cpu]
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "replication/apply.h"
#include "replication/changelog.h"
#include "replication/inbox.h"
#include "replication/origin.h"
#include "replication/payload.h"
#include "replication/payload_stream.h"
#include "replication/routing.h"
#include "replication/spool.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "tools/bench_support.h"
#include "transport/codec.h"
#include "transport/compress.h"
#include "transport/crypto.h"
#include "transport/message_stream.h"

namespace {

using sqlpost::bench::die;
using sqlpost::bench::must;

using sqlpost::Database;
using Clock = std::chrono::steady_clock;

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
struct FreeDeleter {
  void operator()(void* p) const { sqlite3_free(p); }
};

bool g_cpu_clock = false;  // NOLINT: set once from the command line

// Seconds on the clock chosen (--clock): wall time, or this thread's CPU time.
double now_seconds() {
  if (g_cpu_clock) {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
  }
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

double seconds_since(double start) { return now_seconds() - start; }

// A site database with the table published (so capture triggers are installed).
Database make_site(const std::string& path, const char* name) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-journal");
  Database db = must(Database::open(path, Database::Mode::kReadWriteCreate), "open");
  must(db.exec(kSchema), "schema");
  must(db.exec("BEGIN"), "begin");
  must(sqlpost::create_site_tables(db), "site tables");
  must(sqlpost::init_site(db,
                          {name, std::string(name) + "@bench", sqlpost::Role::kConsolidated, ""}),
       "init");
  must(sqlpost::publish(db, {"p", "item", {}, "", "", "incoming"}), "publish");
  must(db.exec("COMMIT"), "commit");
  return db;
}

const std::string kInsertSql =
    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < :n) "
    "INSERT INTO item SELECT i, 'item name ' || i, i % 1000, i * 0.25, 'a note about ' || i, "
    "i & 1, randomblob(24), 1700000000 + i FROM c";
const std::string kUpdateSql = "UPDATE item SET qty = qty + 1, note = 'changed ' || id";

struct Scenario {
  const char* name;
  bool updates;
};

struct Figures {
  double build = 1e300, apply = 1e300, session_apply = 1e300;
  std::size_t mail_bytes = 0, session_bytes = 0;
};

// Runs `sql` at the source with a session attached; returns the changeset.
std::vector<std::uint8_t> write_with_session(Database& db, const std::string& sql, int rows) {
  sqlite3_session* raw = nullptr;
  if (sqlite3session_create(db.handle(), "main", &raw) != SQLITE_OK) {
    die("session", "the session extension is not available");
  }
  std::unique_ptr<sqlite3_session, SessionDeleter> session(raw);
  sqlite3session_attach(raw, "item");
  std::string text = sql;
  const auto at = text.find(":n");
  if (at != std::string::npos) {
    text.replace(at, 2, std::to_string(rows));
  }
  must(db.exec("BEGIN; " + text + "; COMMIT"), "write");
  int size = 0;
  void* bytes = nullptr;
  sqlite3session_changeset(raw, &size, &bytes);
  std::unique_ptr<void, FreeDeleter> owned(bytes);
  const auto* p = static_cast<const std::uint8_t*>(bytes);
  return {p, p + size};
}

// The sender's path (replication/preparer.cpp): routed into a spool, the payload
// compressed once to learn |C| and its digest, then again as the parts are sealed.
std::vector<std::string> build_mails(Database& source, std::int64_t after, std::int64_t upto,
                                     const sqlpost::transport::Key& key) {
  const sqlpost::Partner replica{"replica", "replica@bench", sqlpost::Relation::kChild, {}, after};
  auto body = must(sqlpost::SpooledBody::create(source, replica.name), "spool");
  must(sqlpost::route_changes_for_all(source, {replica}, upto, {{replica.name, body.get()}}),
       "route");
  must(body->finish(), "spool");
  sqlpost::Payload head;
  head.kind = sqlpost::PayloadKind::kData;
  auto measured = must(body->payload(head), "payload");
  const auto message = must(sqlpost::transport::measure_compressed(*measured), "measure");
  auto payload = must(body->payload(head), "payload");
  sqlpost::transport::CompressingSource compressed(*payload);
  std::vector<std::string> mails;
  must(sqlpost::transport::encode_parts(
           {"source", "replica", 1}, "source@bench", "replica@bench", message, compressed, key,
           1'000'000,
           [&](std::uint32_t /*part*/, std::uint32_t /*parts*/, std::string mail) {
             mails.push_back(std::move(mail));
             return sqlpost::success();
           }),
       "encode");
  must(body->discard(), "discard");
  return mails;
}

// The receiver's path (replication/applier.cpp): the parts opened one at a time,
// decompressed and decoded record by record, applied in batches in one transaction.
void apply_mails(Database& replica, const std::vector<std::string>& mails,
                 const sqlpost::transport::Key& key) {
  std::size_t next = 0;
  sqlpost::transport::PayloadStream stream(
      [&]() -> sqlpost::Result<std::optional<sqlpost::transport::OpenedPart>> {
        if (next == mails.size()) {
          return std::optional<sqlpost::transport::OpenedPart>{};
        }
        return std::optional<sqlpost::transport::OpenedPart>{
            must(sqlpost::transport::open_part(mails[next++], key, "replica"), "open")};
      },
      {sqlpost::kDecodeFloorBytes, sqlpost::kMaxDecodeExpansion});
  sqlpost::PayloadReader reader(stream, sqlpost::DecodeLimits{});
  must(reader.head(), "head");
  auto tx = must(sqlpost::Transaction::begin(replica), "begin");
  auto mark = must(sqlpost::OriginMark::set(replica, "source"), "mark");
  auto session = must(sqlpost::ApplySession::begin(replica, {}), "session");
  sqlpost::Payload batch;
  while (must(reader.next(batch, sqlpost::kApplyBatchChanges), "decode")) {
    must(session.apply(batch), "apply");
  }
  must(session.finish(), "finish");
  must(mark.clear(), "clear");
  must(tx.commit(), "commit");
}

int conflict_abort(void* /*ctx*/, int /*kind*/, sqlite3_changeset_iter* /*it*/) {
  return SQLITE_CHANGESET_ABORT;
}

void apply_changeset(Database& replica, std::vector<std::uint8_t>& changeset) {
  must(replica.exec("BEGIN"), "begin");
  const int rc = sqlite3changeset_apply(replica.handle(), static_cast<int>(changeset.size()),
                                        changeset.data(), nullptr, conflict_abort, nullptr);
  if (rc != SQLITE_OK) {
    die("sqlite3changeset_apply", sqlite3_errstr(rc));
  }
  must(replica.exec("COMMIT"), "commit");
}

// One measurement of a scenario: fresh databases, same changes both ways.
void measure(const Options& o, const Scenario& s, Figures& f) {
  const sqlpost::transport::Key key = must(sqlpost::transport::generate_key(), "key");
  Database source = make_site(o.dir + "/source.db", "source");
  Database ours = make_site(o.dir + "/replica-sqlpost.db", "replica");
  Database theirs = make_site(o.dir + "/replica-session.db", "replica2");
  must(sqlpost::add_partner(source, {"replica", "replica@bench", sqlpost::Relation::kChild,
                                     std::vector<std::uint8_t>(32, 1), 0}),
       "partner");
  must(sqlpost::subscribe(source, {"replica", "p", ""}), "subscribe");
  if (s.updates) {  // the rows exist everywhere before the measured updates
    for (Database* db : {&source, &ours, &theirs}) {
      std::string sql = kInsertSql;
      sql.replace(sql.find(":n"), 2, std::to_string(o.rows));
      must(db->exec(sql), "preload");
    }
  }
  const std::int64_t before = must(sqlpost::cut_epoch(source), "cut");
  auto changeset = write_with_session(source, s.updates ? kUpdateSql : kInsertSql, o.rows);
  const std::int64_t upto = must(sqlpost::cut_epoch(source), "cut");

  double start = now_seconds();
  const auto mails = build_mails(source, before, upto, key);
  f.build = std::min(f.build, seconds_since(start));

  start = now_seconds();
  apply_mails(ours, mails, key);
  f.apply = std::min(f.apply, seconds_since(start));

  start = now_seconds();
  apply_changeset(theirs, changeset);
  f.session_apply = std::min(f.session_apply, seconds_since(start));

  f.mail_bytes = 0;
  for (const auto& m : mails) {
    f.mail_bytes += m.size();
  }
  const auto packed = must(sqlpost::transport::zstd::compress(changeset), "compress");
  f.session_bytes = sqlpost::transport::crypto::base64_encode(packed).size();
  if (sqlite3_changes64(ours.handle()) < 0) {
    die("apply", "no rows");
  }
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
    } else if (flag == "--clock") {
      g_cpu_clock = std::string(argv[i + 1]) == "cpu";
    }
  }
  return o;
}

int bench(int argc, char** argv) {
  sqlpost::bench::program_name() = "bench-apply";
  const Options o = parse(argc, argv);
  std::filesystem::create_directories(o.dir);
  std::printf("bench-apply: %d changed rows per scenario, best of %d, %s clock, sqlite %s\n",
              o.rows, o.repeat, g_cpu_clock ? "cpu" : "wall", sqlite3_libversion());
  std::printf("%-8s %14s %14s %14s %7s %12s %12s %7s\n", "scenario", "build rows/s", "apply rows/s",
              "session rows/s", "ratio", "mail B/row", "session B/row", "ratio");
  for (const Scenario s : {Scenario{"insert", false}, Scenario{"update", true}}) {
    Figures f;
    for (int r = 0; r < o.repeat; ++r) {
      measure(o, s, f);
    }
    const double n = o.rows;
    const auto mail = static_cast<double>(f.mail_bytes);
    const auto session = static_cast<double>(f.session_bytes);
    std::printf("%-8s %14.0f %14.0f %14.0f %6.2fx %12.1f %12.1f %6.2fx\n", s.name, n / f.build,
                n / f.apply, n / f.session_apply, f.session_apply / f.apply, mail / n, session / n,
                mail / session);
  }
  std::printf(
      "apply ratio = sqlpost apply speed / session apply speed (goal >= 1.0x); bytes "
      "ratio = sqlpost e-mail bytes / session changeset zstd+base64 (goal <= 1.0x)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return sqlpost::bench::guarded_main(argc, argv, bench); }
