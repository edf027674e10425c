// Issue 10, case 2: a site restored from a backup recovers by itself. Sites
// over the fake mail network; a "backup" is a copy of the database file and a
// "restore" copies it back. Every case ends comparing the databases row by row
// (and PRAGMA integrity_check), or, where recovery needs a person, proving that
// nothing was applied at the restored site and that status says to re-extract.
#include <doctest/doctest.h>

#include <filesystem>

#include "replication/engine.h"
#include "replication/retention.h"
#include "tests/cluster.h"
#include "transport/codec.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::int64_t applied_from(Database& db, const std::string& partner) {
  return query_int(db, "SELECT applied_seq FROM sqlpost_streams WHERE site = '" + partner + "'");
}

void converge(Cluster& c, int rounds = 60) {
  const bool quiet = c.run_until_quiet(rounds);
  CHECK_MESSAGE(quiet, "the cluster did not become quiet");
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);
  const std::string twice = c.applied_twice();
  CHECK_MESSAGE(twice.empty(), twice);
}

std::string backup(const TempDir& dir, const Site& site) {
  std::string copy = dir.path(site.name + "-backup.db");
  std::filesystem::copy_file(site.path, copy);
  return copy;
}

// The database file is copied back while the agent is not running; what the
// site applied is what its restored streams say (for the "applied twice" oracle).
void restore(Site& site, const std::string& copy) {
  site.db.reset();
  std::filesystem::copy_file(copy, site.path, std::filesystem::copy_options::overwrite_existing);
  site.db = std::make_unique<Database>(open_db(site.path));
  site.messages_applied = static_cast<std::size_t>(
      query_int(*site.db, "SELECT ifnull(sum(applied_seq - skipped), 0) FROM sqlpost_streams"));
}

void insert_item(Site& site, std::int64_t id, const std::string& name) {
  exec(*site.db, "INSERT INTO item(id, name, qty) VALUES (" + std::to_string(id) + ", '" + name +
                     "', " + std::to_string(id % 97) + ")");
}

std::string item_name(Site& site, std::int64_t id) {
  auto st = site.db->prepare("SELECT name FROM item WHERE id = ?").value();
  st.bind(1, id);
  return st.step().value() ? st.column_text(0) : std::string("<missing>");
}

StreamState stream_to(Site& site, const std::string& partner) {
  for (const auto& s : load_stream_states(*site.db).value()) {
    if (s.site == partner) {
      return s;
    }
  }
  FAIL("no stream to " << partner);
  return {};
}

}  // namespace

TEST_SUITE_BEGIN("restore");

TEST_CASE("a remote restored from a backup recovers by itself (issue 10, case 2)") {
  TempDir dir;
  Cluster c(dir, 1, 101, {});
  c.log_retention = 1'000'000;
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  c.random_writes(hub, 3);
  c.random_writes(r1, 3);
  converge(c);
  const std::string copy = backup(dir, r1);
  // After the backup: each side inserts a row, and both are applied on the other side.
  insert_item(hub, 500, "hub, after the backup");
  insert_item(r1, 1'000'500, "r1, after the backup");
  converge(c);
  REQUIRE(item_name(hub, 1'000'500) == "r1, after the backup");
  REQUIRE(item_name(r1, 500) == "hub, after the backup");
  restore(r1, copy);
  REQUIRE(item_name(r1, 500) == "<missing>");
  insert_item(r1, 1'000'501, "r1, after the restore");
  converge(c);
  for (Site* s : {&hub, &r1}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 500) == "hub, after the backup");
    CHECK(item_name(*s, 1'000'500) == "r1, after the backup");
    CHECK(item_name(*s, 1'000'501) == "r1, after the restore");
  }
  const StreamState at_r1 = stream_to(r1, "hq");
  CHECK(at_r1.recovery_state == "done");
  CHECK(at_r1.recovery.find("went back in time") != std::string::npos);
  const StreamState at_hub = stream_to(hub, "r1");
  CHECK(at_hub.recovery_state == "done");
  CHECK(at_hub.recovery.find("restored from a backup") != std::string::npos);
}

TEST_CASE("the hub restored from a backup recovers by itself, with every remote") {
  TempDir dir;
  Cluster c(dir, 2, 103, {});
  c.log_retention = 1'000'000;
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  Site& r2 = c.site("r2");
  for (auto& s : c.sites()) {
    c.random_writes(s, 2);
  }
  converge(c);
  const std::string copy = backup(dir, hub);
  insert_item(hub, 600, "hub, after the backup");
  insert_item(r1, 1'000'600, "r1, after the backup");
  insert_item(r2, 2'000'600, "r2, after the backup");
  c.random_writes(r1, 2);
  converge(c);
  REQUIRE(item_name(r2, 1'000'600) == "r1, after the backup");
  restore(hub, copy);
  REQUIRE(item_name(hub, 600) == "<missing>");
  insert_item(hub, 601, "hub, after the restore");
  insert_item(r1, 1'000'601, "r1, after the restore");
  converge(c);
  for (Site* s : {&hub, &r1, &r2}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 600) == "hub, after the backup");
    CHECK(item_name(*s, 1'000'600) == "r1, after the backup");
    CHECK(item_name(*s, 2'000'600) == "r2, after the backup");
    CHECK(item_name(*s, 601) == "hub, after the restore");
    CHECK(item_name(*s, 1'000'601) == "r1, after the restore");
  }
  for (const char* remote : {"r1", "r2"}) {
    CAPTURE(remote);
    CHECK(stream_to(hub, remote).recovery_state == "done");
    CHECK(stream_to(c.site(remote), "hq").recovery_state == "done");
  }
}

TEST_CASE("a restored remote and its hub both write after the restore: nothing is lost") {
  TempDir dir;
  Cluster c(dir, 2, 107, {});
  c.log_retention = 1'000'000;
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  insert_item(hub, 700, "shared");
  insert_item(r1, 1'000'700, "r1 old");
  converge(c);
  const std::string copy = backup(dir, r1);
  for (int round = 0; round < 3; ++round) {  // several messages each way after the backup
    c.random_writes(hub, 2);
    c.random_writes(r1, 2);
    c.random_writes(c.site("r2"), 1);
    c.round();
  }
  exec(*r1.db, "UPDATE item SET name = 'r1 changed it before the restore' WHERE id = 700");
  converge(c);
  restore(r1, copy);
  // Both sides write before any mail moves: new rows and changes of old ones.
  insert_item(hub, 701, "hub, after the restore");
  exec(*hub.db, "UPDATE item SET qty = 42 WHERE id = 700");
  insert_item(r1, 1'000'701, "r1, after the restore");
  exec(*r1.db, "UPDATE item SET name = 'r1 renamed it after the restore' WHERE id = 1000700");
  c.random_writes(r1, 2);
  c.random_writes(hub, 2);
  converge(c);
  for (auto& s : c.sites()) {
    CAPTURE(s.name);
    CHECK(item_name(s, 701) == "hub, after the restore");
    CHECK(item_name(s, 1'000'701) == "r1, after the restore");
    CHECK(item_name(s, 1'000'700) == "r1 renamed it after the restore");
    CHECK(item_name(s, 700) == "r1 changed it before the restore");
    CHECK(query_int(*s.db, "SELECT qty FROM item WHERE id = 700") == 42);
  }
}

TEST_CASE(
    "a restore older than the partner's change log: status says re-extract, nothing is "
    "applied wrongly") {
  TempDir dir;
  Cluster c(dir, 1, 109, {});
  c.log_retention = 0;  // the hub prunes as soon as r1 acknowledged
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  c.random_writes(hub, 2);
  converge(c);
  const std::string copy = backup(dir, r1);
  for (int round = 0; round < 3; ++round) {
    c.random_writes(hub, 2);
    c.random_writes(r1, 2);
    converge(c);
  }
  restore(r1, copy);
  const auto items_at_restore = table_rows(*r1.db, "item");
  const auto tags_at_restore = table_rows(*r1.db, "tag");
  c.random_writes(hub, 1);  // the hub goes on sending: none of it may be applied at r1
  for (int i = 0; i < 30; ++i) {
    c.round();
  }
  CHECK(stream_to(hub, "r1").recovery_state == "re-extract");
  CHECK(stream_to(hub, "r1").recovery.find("re-extract") != std::string::npos);
  CHECK(stream_to(r1, "hq").recovery_state == "re-extract");
  CHECK(table_rows(*r1.db, "item") == items_at_restore);
  CHECK(table_rows(*r1.db, "tag") == tags_at_restore);
  CHECK(applied_from(*r1.db, "hq") == static_cast<std::int64_t>(r1.messages_applied));
  const std::string diff = c.differences();  // they differ; the databases are sound
  CHECK(diff.find("integrity_check") == std::string::npos);
}

// Mail to the hub and to r1 is taken off the network while held and kept, to be
// delivered later (in flight) or never (lost).
struct HeldMail {
  bool to_hub = false;
  bool to_r1 = false;
  std::vector<std::string> mails;     // to the hub
  std::vector<std::string> r1_mails;  // to r1
  void take_from(Cluster& c) {
    c.network().drop_if([this](std::string_view to, std::string_view mail) {
      if (to_hub && to == "hq@hq.test") {
        mails.emplace_back(mail);
        return true;
      }
      if (to_r1 && to == "r1@r1.test") {
        r1_mails.emplace_back(mail);
        return true;
      }
      return false;
    });
  }
};

// A hub and r1 in step, r1 backed up, and mail that can be held on its way.
struct HeldPair {
  TempDir dir;
  Cluster c{dir, 1, 111, {}};
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  HeldMail held;
  std::string copy;
  HeldPair() {
    c.log_retention = 1'000'000;
    held.take_from(c);
    c.random_writes(hub, 1);
    c.random_writes(r1, 2);
    converge(c);
    copy = backup(dir, r1);
  }
};

TEST_CASE_FIXTURE(
    HeldPair,
    "a restored remote's new message and one of its abandoned timeline under the same number: "
    "the one that continues the stream is applied") {
  insert_item(r1, 1'000'600, "applied at the hub");
  c.run(r1);
  c.run(hub);
  held.to_hub = true;
  insert_item(r1, 1'000'601, "lost on the way");
  c.run(r1);
  insert_item(r1, 1'000'602, "arrives late");
  c.run(r1);
  held.to_hub = false;
  REQUIRE(held.mails.size() == 2);
  restore(r1, copy);
  insert_item(r1, 1'000'603, "after the restore");
  c.run(r1);
  insert_item(r1, 1'000'604, "after the restore, too");
  c.run(r1);
  c.run(hub);  // drops both: applied before, and not following what it applied
  c.network().put("hq@hq.test", held.mails[1]);
  c.run(hub);  // the abandoned message waits behind the gap
  c.run(r1);   // finds out, numbers on: its request takes the abandoned number
  c.run(hub);
  CHECK(applied_from(*hub.db, "r1") == query_int(*r1.db, "SELECT max(seq) FROM sqlpost_sent"));
  converge(c);
  for (Site* s : {&hub, &r1}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 1'000'600) == "applied at the hub");
    CHECK(item_name(*s, 1'000'601) == "<missing>");  // only the lost timeline had them
    CHECK(item_name(*s, 1'000'602) == "<missing>");
    CHECK(item_name(*s, 1'000'603) == "after the restore");
    CHECK(item_name(*s, 1'000'604) == "after the restore, too");
  }
}

TEST_CASE_FIXTURE(
    HeldPair,
    "the hub applies a late message of the abandoned timeline instead of the restore request: "
    "the second request still asks back everything lost") {
  insert_item(r1, 1'000'700, "in the first lost message");
  c.run(r1);
  held.to_hub = true;
  insert_item(r1, 1'000'701, "in the late message");
  c.run(r1);
  held.to_hub = false;
  c.run(hub);
  c.run(r1);  // takes in the hub's acknowledgement before it is restored
  restore(r1, copy);
  insert_item(r1, 1'000'702, "after the restore");
  c.run(r1);
  c.run(hub);  // applied before: dropped, and acknowledged
  held.to_hub = true;
  c.run(r1);  // finds out; its restore request is held back
  held.to_hub = false;
  REQUIRE(held.mails.size() == 2);
  c.network().put("hq@hq.test", held.mails[0]);
  c.run(hub);  // the late message continues the stream: applied
  c.network().put("hq@hq.test", held.mails[1]);
  c.run(hub);  // the request has the number just applied: dropped
  converge(c);
  for (Site* s : {&hub, &r1}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 1'000'700) == "in the first lost message");
    CHECK(item_name(*s, 1'000'701) == "in the late message");
    CHECK(item_name(*s, 1'000'702) == "after the restore");
  }
}

TEST_CASE_FIXTURE(
    HeldPair,
    "late mail of the abandoned timeline, beyond the restored site's new numbers, does not hold "
    "the stream open") {
  insert_item(r1, 1'000'800, "applied at the hub");
  c.run(r1);
  c.run(hub);
  held.to_hub = true;
  for (int i = 1; i <= 3; ++i) {
    insert_item(r1, 1'000'800 + i, "abandoned");
    c.run(r1);
  }
  held.to_hub = false;
  REQUIRE(held.mails.size() == 3);
  restore(r1, copy);
  insert_item(r1, 1'000'810, "after the restore");
  c.run(r1);
  c.run(hub);  // applied before: dropped, and acknowledged
  c.run(r1);   // finds out; its restore request has the next number
  c.run(hub);  // applies the request
  const std::int64_t applied = applied_from(*hub.db, "r1");
  c.network().put("hq@hq.test", held.mails[1]);  // under the number after the request
  c.network().put("hq@hq.test", held.mails[2]);  // waits behind it
  c.run(hub);
  CHECK(applied_from(*hub.db, "r1") == applied);
  CHECK(query_int(*hub.db, "SELECT count(*) FROM sqlpost_inbox") == 0);
  CHECK(query_int(*hub.db, "SELECT count(*) FROM sqlpost_abandoned WHERE site = 'r1'") == 2);
  converge(c);
  for (Site* s : {&hub, &r1}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 1'000'800) == "applied at the hub");
    CHECK(item_name(*s, 1'000'803) == "<missing>");
    CHECK(item_name(*s, 1'000'810) == "after the restore");
  }
}

TEST_CASE_FIXTURE(
    HeldPair,
    "a recovery that acted on a stale acknowledgement starts again when the hub names more of "
    "the abandoned timeline") {
  held.to_r1 = true;  // r1 hears nothing from the hub until told
  insert_item(r1, 1'000'900, "abandoned, applied at the hub");
  c.run(r1);
  c.run(hub);
  const std::size_t first_ack = held.r1_mails.size();
  insert_item(r1, 1'000'901, "abandoned, applied at the hub, too");
  c.run(r1);
  c.run(hub);
  REQUIRE(first_ack >= 1);
  restore(r1, copy);
  for (int i = 2; i <= 4; ++i) {  // three new messages before r1 finds out
    insert_item(r1, 1'000'900 + i, "after the restore");
    c.run(r1);
  }
  c.run(hub);
  c.network().put("r1@r1.test", held.r1_mails.front());  // the stale acknowledgement only
  c.run(r1);
  CHECK(stream_to(r1, "hq").recovery.find("went back in time") != std::string::npos);
  held.to_r1 = false;
  for (std::size_t i = first_ack; i < held.r1_mails.size(); ++i) {
    c.network().put("r1@r1.test", held.r1_mails[i]);
  }
  converge(c);
  for (Site* s : {&hub, &r1}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 1'000'900) == "abandoned, applied at the hub");
    CHECK(item_name(*s, 1'000'901) == "abandoned, applied at the hub, too");
    for (int i = 2; i <= 4; ++i) {
      CHECK(item_name(*s, 1'000'900 + i) == "after the restore");
    }
  }
}

TEST_CASE_FIXTURE(
    HeldPair,
    "a restored remote applies a late copy of the hub's message before the hub serves its "
    "request: the regenerated messages are linked to it again") {
  insert_item(hub, 900, "hub, after the backup");
  held.to_r1 = true;
  c.run(hub);
  held.to_r1 = false;
  REQUIRE(held.r1_mails.size() == 1);
  const std::string late_copy = held.r1_mails.front();
  c.network().put("r1@r1.test", late_copy);
  c.run(r1);  // applies it, acknowledges
  c.run(hub);
  restore(r1, copy);
  insert_item(r1, 1'000'900, "r1, after the restore");
  c.run(r1);
  c.run(hub);  // applies it; its acknowledgement says it holds r1's acknowledgement
  held.to_hub = true;
  c.run(r1);  // finds out; its restore request is held back
  held.to_hub = false;
  c.network().put("r1@r1.test", late_copy);  // a duplicate, late
  c.run(r1);                                 // applies it: it continues what r1 holds
  for (const auto& mail : held.mails) {
    c.network().put("hq@hq.test", mail);
  }
  converge(c);
  for (Site* s : {&hub, &r1}) {
    CAPTURE(s->name);
    CHECK(item_name(*s, 900) == "hub, after the backup");
    CHECK(item_name(*s, 1'000'900) == "r1, after the restore");
  }
}

TEST_CASE(
    "a conflict's decided row goes back to the child again when the message that carried it is "
    "regenerated") {
  TempDir dir;
  Cluster c(dir, 1, 121, {});
  c.log_retention = 1'000'000;
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  HeldMail held;
  held.take_from(c);
  exec(*hub.db, "UPDATE sqlpost_articles SET conflict = 'consolidated' WHERE table_name = 'item'");
  insert_item(hub, 700, "original");
  converge(c);
  exec(*hub.db, "UPDATE item SET name = 'hub changed' WHERE id = 700");
  exec(*r1.db, "DELETE FROM item WHERE id = 700");
  c.run(r1);
  held.to_r1 = true;
  c.run(hub);  // keeps its row against r1's delete; the message taking it back is lost
  held.to_r1 = false;
  REQUIRE_FALSE(held.r1_mails.empty());
  CHECK(query_int(*hub.db,
                  "SELECT count(*) FROM sqlpost_conflicts WHERE kind = 'delete_changed'") == 1);
  REQUIRE(rescan_partner(*hub.db, "r1", 0).ok());  // regenerated from the change log
  converge(c);
  CHECK(item_name(hub, 700) == "hub changed");
  CHECK(item_name(r1, 700) == "hub changed");
}

TEST_CASE("a forged message claiming the site went back in time changes nothing") {
  TempDir dir;
  Cluster c(dir, 1, 113, {});
  Site& r1 = c.site("r1");
  c.random_writes(c.site("hq"), 2);
  converge(c);
  // An acknowledgement far ahead, from "hq", sealed with a key that is not the pair's.
  Payload lie;
  lie.kind = PayloadKind::kAckOnly;
  lie.ack = 999;
  lie.confirmed = 999;
  transport::Key wrong{};
  auto forged = transport::encode_message({"hq", "r1", 0}, "hq@hq.test", "r1@r1.test",
                                          encode_payload(lie), wrong, 8192);
  REQUIRE(forged.ok());
  c.network().put("r1@r1.test", forged->front());
  c.run(r1);
  CHECK(query_int(*r1.db, "SELECT count(*) FROM sqlpost_rejected") == 1);
  CHECK(stream_to(r1, "hq").recovery.empty());
  CHECK(query_int(*r1.db, "SELECT next_seq FROM sqlpost_streams WHERE site = 'hq'") ==
        query_int(*r1.db, "SELECT ifnull(max(seq), 0) + 1 FROM sqlpost_sent WHERE site = 'hq'"));
  converge(c);
  CHECK(stream_to(r1, "hq").recovery.empty());
}

// Mail of the abandoned numbering still in flight (delayed, duplicated) after a
// restore, writes everywhere meanwhile; the hub or a remote restored. (Ran with
// 60 seeds while developing; 12 in the default run.)
TEST_CASE("restores over a lossy channel converge, for many seeds") {
  transport::FaultConfig faults;
  faults.drop = 0.15;
  faults.duplicate = 0.15;
  faults.reorder = 0.3;
  faults.delay = 0.2;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    TempDir dir;
    Cluster c(dir, 2, seed, {});
    c.log_retention = 1'000'000;
    for (auto& s : c.sites()) {
      c.random_writes(s, 2);
    }
    converge(c);
    Site& restored = seed % 3 == 0 ? c.site("hq") : c.site("r" + std::to_string(1 + seed % 2));
    const std::string copy = backup(dir, restored);
    c.network().set_faults(faults);
    for (int i = 0; i < 4; ++i) {
      for (auto& s : c.sites()) {
        c.random_writes(s, 1);
      }
      c.round();
    }
    c.network().set_faults({});
    converge(c);
    restore(restored, copy);
    c.network().set_faults(faults);
    for (int i = 0; i < 4; ++i) {
      for (auto& s : c.sites()) {
        c.random_writes(s, 1);
      }
      c.round();
    }
    c.network().set_faults({});
    converge(c, 200);
  }
}

TEST_CASE("an agent that dies at any step of a restore recovery still converges") {
  const std::vector<std::string> points = {
      "after-inbox-commit", "before-apply-commit", "before-outbox-commit", "after-outbox-commit",
      "after-send",         "after-flush",         "after-control-commit"};
  for (const auto& point : points) {
    for (int nth : {1, 3}) {
      CAPTURE(point);
      CAPTURE(nth);
      TempDir dir;
      Cluster c(dir, 2, 127, {});
      c.log_retention = 1'000'000;
      Site& restored = nth == 1 ? c.site("r1") : c.site("hq");
      for (auto& s : c.sites()) {
        c.random_writes(s, 2);
      }
      converge(c);
      const std::string copy = backup(dir, restored);
      for (auto& s : c.sites()) {
        c.random_writes(s, 2);
      }
      converge(c);
      restore(restored, copy);
      c.random_writes(restored, 2);
      int hits = 0;
      auto crash = [&](std::string_view at) { return at == point && ++hits == nth; };
      for (int i = 0; i < 8; ++i) {
        c.round(crash);
      }
      CHECK_MESSAGE(hits >= nth, "the crash point was never reached");
      converge(c);
    }
  }
}

TEST_SUITE_END();
