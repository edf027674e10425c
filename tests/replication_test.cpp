// Replication end to end over the fake mail network: three sites, lossy
// channels, crashes between every step, hostile mail.
#include <doctest/doctest.h>

#include "replication/changelog.h"
#include "replication/engine.h"
#include "replication/outbox.h"
#include "replication/retention.h"

#include <filesystem>
#include "schema/metadata.h"
#include "tests/cluster.h"
#include "transport/codec.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::int64_t applied_from(Database& db, const std::string& partner) {
  return query_int(db, "SELECT applied_seq FROM sqlpost_streams WHERE site = '" + partner + "'");
}

void writes_everywhere(Cluster& c, int transactions) {
  for (auto& s : c.sites()) {
    c.random_writes(s, transactions);
  }
}

void converge(Cluster& c, int rounds = 300) {
  const bool quiet = c.run_until_quiet(rounds);
  CHECK_MESSAGE(quiet, "the cluster did not become quiet");
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);
  const std::string twice = c.applied_twice();
  CHECK_MESSAGE(twice.empty(), twice);
}

}  // namespace

TEST_SUITE_BEGIN("replication");

TEST_CASE("three sites over a perfect channel converge, both directions") {
  TempDir dir;
  Cluster c(dir, 2, 1, {});
  for (int i = 0; i < 5; ++i) {
    writes_everywhere(c, 6);
    c.round();
  }
  converge(c);
  CHECK(query_int(*c.site("r2").db, "SELECT count(*) FROM item WHERE id < 1000000") > 0);
  CHECK(query_int(*c.site("r2").db,
                  "SELECT count(*) FROM item WHERE id > 1000000 AND id < "
                  "2000000") > 0);
}

TEST_CASE("three sites converge over a lossy channel for many seeds") {
  transport::FaultConfig faults;
  faults.drop = 0.15;
  faults.duplicate = 0.15;
  faults.reorder = 0.3;
  faults.delay = 0.2;
  faults.corrupt = 0.05;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    TempDir dir;
    Cluster c(dir, 2, seed, faults);
    for (int i = 0; i < 6; ++i) {
      writes_everywhere(c, 3);
      c.round();
    }
    // Let the faults go so the run can finish, then check.
    c.network().set_faults({});
    converge(c);
  }
}

TEST_CASE("an agent that dies between any two steps converges and applies nothing twice") {
  const std::vector<std::string> points = {
      "after-inbox-commit", "before-apply-commit", "before-outbox-commit", "after-outbox-commit",
      "after-send",         "after-flush",         "after-control-commit"};
  for (const auto& point : points) {
    for (int nth : {1, 2}) {
      CAPTURE(point);
      CAPTURE(nth);
      TempDir dir;
      transport::FaultConfig faults;
      faults.drop = 0.1;
      faults.duplicate = 0.1;
      Cluster c(dir, 2, static_cast<std::uint64_t>(nth) * 7919, faults);
      int hits = 0;
      auto crash = [&](std::string_view at) { return at == point && ++hits == nth; };
      for (int i = 0; i < 14; ++i) {
        if (i < 6) {
          writes_everywhere(c, 3);
        }
        c.round(crash);
      }
      CHECK_MESSAGE(hits >= nth, "the crash point was never reached");
      c.network().set_faults({});
      converge(c);
    }
  }
}

TEST_CASE("a part is recorded as sent only after the link flushed it") {
  TempDir dir;
  Cluster c(dir, 2, 41, {});
  Database& hub = *c.site("hq").db;
  c.random_writes(c.site("hq"), 4);
  // The hub's first flush fails: the mails it held are lost, as the file link
  // removes the mails it could not make durable.
  c.network().fail_flush(1);
  c.run(c.site("hq"));
  CHECK(c.network().stats().lost_in_flush >= 2);
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_outbox") >= 2);
  CHECK(query_int(hub,
                  "SELECT count(*) FROM sqlpost_outbox WHERE sent_count > 0 OR last_sent_at IS "
                  "NOT NULL") == 0);
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_streams WHERE last_sent_at IS NOT NULL") == 0);
  CHECK(c.network().mailbox("r1@r1.test").empty());
  CHECK(c.network().mailbox("r2@r2.test").empty());
  // The next run sends every part again, flushes, and only then records it.
  c.run(c.site("hq"));
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_outbox WHERE sent_count = 0") == 0);
  CHECK(!c.network().mailbox("r1@r1.test").empty());
  converge(c);
  CHECK(applied_from(*c.site("r1").db, "hq") >= 1);
  CHECK(applied_from(*c.site("r2").db, "hq") >= 1);
}

TEST_CASE("foreign mail is left alone; forged, misaddressed and unknown mail is set aside") {
  TempDir dir;
  Cluster c(dir, 2, 3, {});
  c.random_writes(c.site("hq"), 2);
  const std::string foreign =
      "From: boss@example.com\r\nTo: hq@hq.test\r\nSubject: lunch?\r\n\r\nAre you free?\r\n";
  c.network().put("hq@hq.test", foreign);
  // A message from r1 encrypted with the wrong key (a forgery).
  transport::Key wrong{};
  auto forged = transport::encode_message({"r1", "hq", 1}, "r1@r1.test", "hq@hq.test",
                                          std::vector<std::uint8_t>{1, 2, 3}, wrong, 8192);
  REQUIRE(forged.ok());
  c.network().put("hq@hq.test", forged->front());
  // From a site hq does not know, and one addressed to another site.
  auto stranger = transport::encode_message({"mallory", "hq", 1}, "m@x.test", "hq@hq.test",
                                            std::vector<std::uint8_t>{1}, wrong, 8192);
  c.network().put("hq@hq.test", stranger->front());
  auto misaddressed = transport::encode_message({"r1", "r2", 1}, "r1@r1.test", "hq@hq.test",
                                                std::vector<std::uint8_t>{1}, wrong, 8192);
  c.network().put("hq@hq.test", misaddressed->front());
  c.round();
  c.round();
  const auto hub_mail = c.network().mailbox("hq@hq.test");
  REQUIRE(hub_mail.size() == 1);
  CHECK(hub_mail.front() == foreign);
  Database& hub = *c.site("hq").db;
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_rejected") == 3);
  CHECK(query_int(hub, "SELECT rejected FROM sqlpost_streams WHERE site = 'r1'") == 2);
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_foreign_mail") == 1);
  converge(c);
  CHECK(c.network().mailbox("hq@hq.test").size() == 1);  // still there after many runs
}

TEST_CASE("a lost message is recovered by a resend request and by the resend timeout") {
  TempDir dir;
  Cluster c(dir, 1, 5, {});
  c.random_writes(c.site("hq"), 3);
  c.round();  // hq sends message 1
  c.random_writes(c.site("hq"), 3);
  // Drop everything hq sends in the next round (message 2), then deliver again.
  transport::FaultConfig lose_all;
  lose_all.drop = 1.0;
  c.network().set_faults(lose_all);
  c.round();
  c.network().set_faults({});
  c.random_writes(c.site("hq"), 3);  // message 3 arrives, 2 is missing: a gap
  converge(c);
  CHECK(query_int(*c.site("r1").db, "SELECT applied_seq FROM sqlpost_streams") >= 3);
}

TEST_CASE("a message split into many parts arrives out of order, duplicated, and is applied once") {
  TempDir dir;
  transport::FaultConfig shuffle;
  shuffle.reorder = 1.0;
  shuffle.duplicate = 0.5;
  shuffle.delay = 0.3;
  Cluster c(dir, 1, 23, shuffle);
  exec(*c.site("hq").db,
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE "
       "i < 300) INSERT INTO item SELECT i, 'big', i, i * 1.5, randomblob(700) "
       "FROM n");
  c.round();
  Database& hub = *c.site("hq").db;
  const auto parts = query_int(hub, "SELECT max(parts) FROM sqlpost_outbox");
  CHECK(parts > 20);
  converge(c);
  CHECK(applied_from(*c.site("r1").db, "hq") == 1);
  CHECK(c.site("r1").messages_applied == 1);
  CHECK(query_int(*c.site("r1").db, "SELECT count(*) FROM item") == 300);
}

TEST_CASE("the change log is pruned once every partner acknowledged") {
  TempDir dir;
  Cluster c(dir, 2, 11, {});
  for (int i = 0; i < 4; ++i) {
    writes_everywhere(c, 5);
    c.round();
  }
  converge(c);
  for (auto& s : c.sites()) {
    CAPTURE(s.name);
    CHECK(query_int(*s.db, "SELECT count(*) FROM sqlpost_log") <= 1);
    CHECK(query_int(*s.db, "SELECT value FROM sqlpost_meta WHERE key = 'pruned_epoch'") > 0);
  }
}

namespace {

void restore(Site& site, const std::string& backup) {
  site.db.reset();
  std::filesystem::copy_file(backup, site.path, std::filesystem::copy_options::overwrite_existing);
  site.db = std::make_unique<Database>(open_db(site.path));
}

}  // namespace

TEST_CASE("a remote restored from an old backup catches up after rescan on both sides") {
  TempDir dir;
  Cluster c(dir, 2, 13, {});
  c.log_retention = 1'000'000;  // keep the log so rescan is possible
  writes_everywhere(c, 4);
  converge(c);
  Site& r1 = c.site("r1");
  const std::string backup = dir.path("r1-backup.db");
  std::filesystem::copy_file(r1.path, backup);
  for (int i = 0; i < 3; ++i) {  // hub and r2 move on; r1 only receives
    c.random_writes(c.site("hq"), 4);
    c.random_writes(c.site("r2"), 4);
    c.round();
  }
  converge(c);
  restore(r1, backup);
  r1.messages_applied = static_cast<std::size_t>(applied_from(*r1.db, "hq"));
  Database& hub = *c.site("hq").db;
  // What each side applied tells the other where to start again.
  auto hub_rescan = rescan_partner(hub, "r1", applied_from(*r1.db, "hq") + 1);
  REQUIRE_MESSAGE(hub_rescan.ok(), (hub_rescan.ok() ? "" : hub_rescan.error().message));
  REQUIRE(rescan_partner(*r1.db, "hq", applied_from(hub, "r1") + 1).ok());
  c.random_writes(r1, 2);  // and r1 goes on working
  converge(c);
}

TEST_CASE("rescan refuses when the log was pruned, and says to re-extract") {
  TempDir dir;
  Cluster c(dir, 1, 17, {});
  for (int i = 0; i < 3; ++i) {
    c.random_writes(c.site("hq"), 4);
    c.round();
  }
  converge(c);
  auto r = rescan_partner(*c.site("hq").db, "r1", 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("re-extract") != std::string::npos);
}

// ---- issue 10, case 5: fast, certain recovery of lost mail

namespace {

// Loses the first send of part `part` of message `seq` to `to` (counted in *lost).
std::function<bool(std::string_view, std::string_view)> lose_part_once(std::string to, int seq,
                                                                       int part, int* lost) {
  return [to = std::move(to), seq, part, lost](std::string_view address, std::string_view mail) {
    const bool match =
        address == to &&
        mail.find("\r\nX-Sqlpost-Sequence: " + std::to_string(seq) + "\r\n") !=
            std::string_view::npos &&
        mail.find("\r\nX-Sqlpost-Part: " + std::to_string(part) + "\r\n") != std::string_view::npos;
    if (match && *lost == 0) {
      ++*lost;
      return true;
    }
    return false;
  };
}

void insert_big_rows(Database& db, int rows) {
  exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
               std::to_string(rows) +
               ") INSERT INTO item SELECT i, 'big', i, i * 1.5, randomblob(700) FROM n");
}

}  // namespace

TEST_CASE("a lost part of the newest message is a gap: recovered long before resend_timeout") {
  TempDir dir;
  Cluster c(dir, 1, 31, {});
  c.resend_timeout = 1'000'000'000;  // only the gap can bring the part back
  int lost = 0;
  c.network().drop_if(lose_part_once("r1@r1.test", 1, 2, &lost));
  insert_big_rows(*c.site("hq").db, 40);
  converge(c, 20);
  CHECK(lost == 1);
  CHECK(applied_from(*c.site("r1").db, "hq") == 1);
  CHECK(query_int(*c.site("r1").db, "SELECT count(*) FROM item") == 40);
}

TEST_CASE("a duplicate-suppressing mail server still delivers resends (fresh Message-IDs)") {
  TempDir dir;
  transport::FaultConfig suppressing;
  suppressing.suppress_seen_message_ids = true;
  Cluster c(dir, 1, 37, suppressing);
  int lost = 0;
  c.network().drop_if(lose_part_once("r1@r1.test", 1, 2, &lost));
  insert_big_rows(*c.site("hq").db, 40);
  c.round();
  exec(*c.site("hq").db, "UPDATE item SET name = 'later' WHERE id = 1");  // message 2
  converge(c, 40);
  CHECK(lost == 1);
  CHECK(c.network().stats().suppressed == 0);  // no Message-ID was ever sent twice
  CHECK(applied_from(*c.site("r1").db, "hq") == 2);
}

TEST_CASE("a resend request inside resend_interval is queued, not dropped") {
  TempDir dir;
  Cluster c(dir, 1, 41, {});
  c.resend_timeout = 1'000'000'000;  // only the request can bring message 2 back
  Database& hq = *c.site("hq").db;
  exec(hq, "INSERT INTO item VALUES (1, 'one', 1, NULL, NULL)");
  c.round();
  c.round();
  int lost = 0;
  c.network().drop_if(lose_part_once("r1@r1.test", 2, 1, &lost));
  exec(hq, "UPDATE item SET name = 'two' WHERE id = 1");
  c.run(c.site("hq"));  // message 2 is sent now, and lost
  exec(*c.site("r1").db, "UPDATE sqlpost_streams SET resend_from = 2 WHERE site = 'hq'");
  c.run(c.site("r1"));  // r1 asks for it at once: inside hq's resend_interval
  Engine engine(hq, *c.site("hq").link, c.options());
  RunReport report;
  REQUIRE(engine.receive(report).ok());
  bool queued = false;
  for (const auto& note : report.notes) {
    queued = queued || note.find("queued") != std::string::npos;
  }
  CHECK(queued);
  CHECK(query_int(hq,
                  "SELECT count(*) FROM sqlpost_outbox WHERE seq = 2 AND last_sent_at IS "
                  "NULL") == 0);  // not at once ...
  converge(c, 20);                // ... but when the interval is over
  CHECK(lost == 1);
  CHECK(query_int(*c.site("r1").db, "SELECT name = 'two' FROM item WHERE id = 1") == 1);
}

TEST_CASE("resend re-splits a message at a lower max_message_bytes; stale parts are dropped") {
  TempDir dir;
  Cluster c(dir, 1, 43, {});
  c.max_message_bytes = 40000;
  c.resend_timeout = 1'000'000'000;
  Database& hq = *c.site("hq").db;
  insert_big_rows(hq, 100);
  // Of the first encoding only part 1 ever reaches r1.
  auto first_encoding = std::make_shared<bool>(true);
  c.network().drop_if([first_encoding](std::string_view to, std::string_view mail) {
    return *first_encoding && to == "r1@r1.test" &&
           mail.find("\r\nX-Sqlpost-Sequence: 1\r\n") != std::string::npos &&
           mail.find("\r\nX-Sqlpost-Part: 1\r\n") == std::string::npos;
  });
  c.round();
  c.round();
  const auto before = query_int(hq, "SELECT max(parts) FROM sqlpost_outbox WHERE seq = 1");
  CHECK(before > 1);
  CHECK(query_int(*c.site("r1").db, "SELECT count(*) FROM sqlpost_inbox") == 1);  // part 1
  *first_encoding = false;
  c.max_message_bytes = 8192;  // the operator lowers it, then runs sqlpost resend
  {
    auto tx = Transaction::begin(hq);
    REQUIRE(tx.ok());
    const auto summary = reencode_outbox(hq, "r1", 1, 8192);
    REQUIRE_MESSAGE(summary.ok(), summary.error().message);
    CHECK(summary->messages == 1);
    REQUIRE(tx->commit().ok());
  }
  const auto after = query_int(hq, "SELECT max(parts) FROM sqlpost_outbox WHERE seq = 1");
  CHECK(after > before);
  converge(c, 30);
  CHECK(applied_from(*c.site("r1").db, "hq") == 1);
  CHECK(c.site("r1").messages_applied == 1);
  CHECK(query_int(*c.site("r1").db, "SELECT count(*) FROM item") == 100);
}

TEST_SUITE_END();
