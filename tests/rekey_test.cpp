// Key rotation through the stream (`sqlpost site rekey`, replication/rekey.h,
// docs/protocol.md "Key rotation"): sites over the fake mail network rotate a
// pair's key while rows flow both ways, with the rekey message lost, with mail
// sealed under the old key arriving late, against a hostile partner, and after a
// restore from a backup. Every case ends comparing the databases row by row.
#include <doctest/doctest.h>

#include <filesystem>
#include <optional>
#include <set>

#include "replication/engine.h"
#include "replication/outbox.h"
#include "replication/payload.h"
#include "replication/rekey.h"
#include "tests/cluster.h"
#include "transport/codec.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

std::string text_of(Database& db, const std::string& sql) {
  auto st = db.prepare(sql).value();
  return st.step().value() ? st.column_text(0) : std::string();
}

std::string pair_key_hex(Site& site, const std::string& partner) {
  return text_of(*site.db, "SELECT hex(key) FROM sqlpost_sites WHERE name = '" + partner + "'");
}

transport::Key pair_key(Site& site, const std::string& partner) {
  return transport::key_from_hex(pair_key_hex(site, partner)).value();
}

std::string rekey_state(Site& site, const std::string& partner) {
  return load_rekey_state(*site.db, partner).value().state;
}

std::int64_t rejected(Site& site) {
  return query_int(*site.db, "SELECT count(*) FROM sqlpost_rejected");
}

void start(Cluster& c, const std::string& site, const std::string& partner) {
  auto started = start_rekey(*c.site(site).db, partner, c.clock());
  REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
}

// One agent run at one site (like Cluster::run), returning what it reported.
RunReport run_site(Cluster& c, Site& s) {
  Engine engine(*s.db, *s.link, c.options());
  RunReport report;
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
  REQUIRE_MESSAGE(step.ok(), (step.ok() ? "" : step.error().message));
  s.messages_applied += report.messages_applied;
  return report;
}

void converge(Cluster& c, int rounds = 200) {
  const bool quiet = c.run_until_quiet(rounds);
  CHECK_MESSAGE(quiet, "the cluster did not become quiet");
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);
  const std::string twice = c.applied_twice();
  CHECK_MESSAGE(twice.empty(), twice);
}

// The payload of a one-part mail under `key`, if it opens.
std::optional<Payload> payload_of(const std::string& mail, const transport::Key& key,
                                  const std::string& receiver) {
  auto part = transport::open_part(mail, key, receiver);
  if (!part.ok() || part->header.parts != 1) {
    return std::nullopt;
  }
  std::vector<transport::OpenedPart> parts;
  parts.push_back(std::move(part).value());
  auto bytes = transport::reassemble(std::move(parts));
  if (!bytes.ok()) {
    return std::nullopt;
  }
  auto payload = decode_payload(bytes.value());
  return payload.ok() ? std::optional<Payload>(std::move(payload).value()) : std::nullopt;
}

bool notes_mention(const RunReport& r, const std::string& text) {
  for (const auto* list : {&r.notes, &r.problems}) {
    for (const auto& line : *list) {
      if (line.find(text) != std::string::npos) {
        return true;
      }
    }
  }
  return false;
}

void insert_item(Site& site, std::int64_t id, const std::string& name) {
  exec(*site.db, "INSERT INTO item(id, name, qty) VALUES (" + std::to_string(id) + ", '" + name +
                     "', " + std::to_string(id % 97) + ")");
}

}  // namespace

TEST_SUITE_BEGIN("rekey");

TEST_CASE("a pair rotates its key while rows flow both ways, and can rotate again") {
  TempDir dir;
  Cluster c(dir, 2, 7, {});
  for (int i = 0; i < 3; ++i) {  // before
    for (auto& s : c.sites()) {
      c.random_writes(s, 3);
    }
    c.round();
  }
  const std::string k0 = pair_key_hex(c.site("hq"), "r1");
  const std::string r2_key = pair_key_hex(c.site("hq"), "r2");
  REQUIRE(k0 == pair_key_hex(c.site("r1"), "hq"));
  start(c, "hq", "r1");
  CHECK(rekey_state(c.site("hq"), "r1") == "offered");
  CHECK(start_rekey(*c.site("hq").db, "r1", c.clock()).error().code == Errc::kAlreadyExists);
  CHECK(start_rekey(*c.site("hq").db, "nobody", c.clock()).error().code == Errc::kNotFound);
  // Mail to r1 is watched: nothing may be sealed under a key r1 does not hold.
  std::vector<std::string> to_r1;
  c.network().drop_if([&](std::string_view to, std::string_view mail) {
    if (to == "r1@r1.test") {
      to_r1.emplace_back(mail);
    }
    return false;
  });
  std::set<std::string> states_seen;
  for (int i = 0; i < 12; ++i) {  // during
    for (auto& s : c.sites()) {
      c.random_writes(s, 2);
    }
    c.round();
    states_seen.insert(rekey_state(c.site("hq"), "r1") + "/" + rekey_state(c.site("r1"), "hq"));
  }
  CHECK(states_seen.count("offered/switched") + states_seen.count("switched/switched") > 0);
  for (int i = 0; i < 3; ++i) {  // after
    for (auto& s : c.sites()) {
      c.random_writes(s, 3);
    }
    c.round();
  }
  converge(c);
  CHECK(rekey_state(c.site("hq"), "r1") == "done");
  CHECK(rekey_state(c.site("r1"), "hq") == "done");
  const std::string k1 = pair_key_hex(c.site("hq"), "r1");
  CHECK(k1 != k0);
  CHECK(k1 == pair_key_hex(c.site("r1"), "hq"));
  CHECK(pair_key_hex(c.site("hq"), "r2") == r2_key);  // another pair is untouched
  CHECK(query_int(*c.site("hq").db,
                  "SELECT count(*) FROM sqlpost_rekey WHERE new_key IS NOT "
                  "NULL OR old_key IS NOT NULL") == 0);
  for (auto& s : c.sites()) {
    CHECK_MESSAGE(rejected(s) == 0, s.name);
  }
  // Every mail r1 was sent opened under the key of its time, and the last ones
  // only under the new key.
  const transport::Key old_key = transport::key_from_hex(k0).value();
  const transport::Key new_key = transport::key_from_hex(k1).value();
  REQUIRE_FALSE(to_r1.empty());
  for (const auto& mail : to_r1) {
    CHECK((transport::open_part(mail, old_key, "r1").ok() ||
           transport::open_part(mail, new_key, "r1").ok()));
  }
  CHECK(transport::open_part(to_r1.back(), new_key, "r1").ok());
  CHECK_FALSE(transport::open_part(to_r1.back(), old_key, "r1").ok());

  // The remote starts the next rotation; traffic goes on.
  start(c, "r1", "hq");
  for (int i = 0; i < 6; ++i) {
    for (auto& s : c.sites()) {
      c.random_writes(s, 2);
    }
    c.round();
  }
  converge(c);
  CHECK(rekey_state(c.site("hq"), "r1") == "done");
  CHECK(rekey_state(c.site("r1"), "hq") == "done");
  const std::string k2 = pair_key_hex(c.site("r1"), "hq");
  CHECK(k2 != k1);
  CHECK(k2 == pair_key_hex(c.site("hq"), "r1"));
}

TEST_CASE("a rotation over a lossy channel completes for many seeds") {
  transport::FaultConfig faults;
  faults.drop = 0.15;
  faults.duplicate = 0.15;
  faults.reorder = 0.3;
  faults.delay = 0.2;
  faults.corrupt = 0.05;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    CAPTURE(seed);
    TempDir dir;
    Cluster c(dir, 2, seed, faults);
    const std::string k0 = pair_key_hex(c.site("hq"), "r2");
    for (int i = 0; i < 8; ++i) {
      for (auto& s : c.sites()) {
        c.random_writes(s, 2);
      }
      if (i == 2) {
        start(c, "hq", "r2");
      }
      if (i == 3) {
        start(c, "r1", "hq");  // the other pair too, from the other end
      }
      c.round();
    }
    c.network().set_faults({});
    converge(c);
    CHECK(rekey_state(c.site("hq"), "r2") == "done");
    CHECK(rekey_state(c.site("r2"), "hq") == "done");
    CHECK(rekey_state(c.site("hq"), "r1") == "done");
    CHECK(rekey_state(c.site("r1"), "hq") == "done");
    CHECK(pair_key_hex(c.site("hq"), "r2") != k0);
    CHECK(pair_key_hex(c.site("hq"), "r2") == pair_key_hex(c.site("r2"), "hq"));
    CHECK(pair_key_hex(c.site("hq"), "r1") == pair_key_hex(c.site("r1"), "hq"));
  }
}

TEST_CASE("a lost rekey message is sent again and the rotation completes") {
  TempDir dir;
  Cluster c(dir, 1, 3, {});
  converge(c);
  const transport::Key k0 = pair_key(c.site("hq"), "r1");
  int lost = 0;
  c.network().drop_if([&](std::string_view to, std::string_view mail) {
    if (to != "r1@r1.test" || lost > 0) {
      return false;
    }
    const auto payload = payload_of(std::string(mail), k0, "r1");
    if (payload && payload->rekey && payload->rekey->step == RekeyStep::kOffer) {
      ++lost;
      return true;
    }
    return false;
  });
  start(c, "hq", "r1");
  insert_item(c.site("hq"), 10, "hub, with the offer");
  insert_item(c.site("r1"), 1'000'010, "r1, while the offer is lost");
  for (int i = 0; i < 3; ++i) {
    c.round();
  }
  CHECK(lost == 1);
  CHECK(rekey_state(c.site("hq"), "r1") == "offered");  // waits for the acknowledgement
  CHECK(rekey_state(c.site("r1"), "hq").empty());
  converge(c);  // the outbox sends message n again after resend_timeout
  CHECK(rekey_state(c.site("hq"), "r1") == "done");
  CHECK(rekey_state(c.site("r1"), "hq") == "done");
  CHECK(pair_key_hex(c.site("hq"), "r1") == pair_key_hex(c.site("r1"), "hq"));
  CHECK_FALSE(pair_key(c.site("hq"), "r1") == k0);
}

TEST_CASE("both sites start a rotation at once: one key wins, nothing is lost") {
  TempDir dir;
  Cluster c(dir, 1, 5, {});
  converge(c);
  start(c, "hq", "r1");
  start(c, "r1", "hq");
  insert_item(c.site("hq"), 11, "hub");
  insert_item(c.site("r1"), 1'000'011, "r1");
  converge(c);
  CHECK(rekey_state(c.site("hq"), "r1") == "done");
  CHECK(rekey_state(c.site("r1"), "hq") == "done");
  CHECK(pair_key_hex(c.site("hq"), "r1") == pair_key_hex(c.site("r1"), "hq"));
}

TEST_CASE(
    "both sites start a rotation and the loser's offer is acknowledged first: the pair "
    "still ends with one key") {
  TempDir dir;
  Cluster c(dir, 1, 9, {});
  converge(c);
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  start(c, "hq", "r1");
  start(c, "r1", "hq");
  run_site(c, r1);                             // r1's offer goes first
  const RunReport hub_run = run_site(c, hub);  // ignores it (hq sorts first), acknowledges it
  CHECK(notes_mention(hub_run, "this site's offer wins"));
  const RunReport r1_run = run_site(c, r1);  // an acknowledgement of its offer is not acceptance
  CHECK(notes_mention(r1_run, "took the new key it offered"));
  CHECK(rekey_state(r1, "hq") == "switched");
  insert_item(hub, 12, "hub");
  insert_item(r1, 1'000'012, "r1");
  converge(c);
  CHECK(rekey_state(hub, "r1") == "done");
  CHECK(rekey_state(r1, "hq") == "done");
  CHECK(pair_key_hex(hub, "r1") == pair_key_hex(r1, "hq"));
  for (auto& s : c.sites()) {
    CHECK_MESSAGE(rejected(s) == 0, s.name);
  }
}

TEST_CASE(
    "mail sealed under the old key is applied after the switch; a late copy after the "
    "old key is forgotten is refused") {
  TempDir dir;
  Cluster c(dir, 1, 4, {});
  converge(c);
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  start(c, "hq", "r1");
  insert_item(hub, 20, "with the offer");
  run_site(c, hub);  // message n: the offer, sealed under the old key
  // Message n+1, still under the old key (nothing acknowledged the offer yet), is held.
  std::vector<std::string> held;
  bool hold = true;
  c.network().drop_if([&](std::string_view to, std::string_view mail) {
    if (hold && to == "r1@r1.test") {
      held.emplace_back(mail);
      return true;
    }
    return false;
  });
  insert_item(hub, 21, "old key, arrives late");
  run_site(c, hub);
  hold = false;
  REQUIRE(held.size() == 1);
  const transport::Key k0 = pair_key(hub, "r1");
  CHECK(transport::open_part(held[0], k0, "r1").ok());
  RunReport r1_run = run_site(c, r1);  // applies the offer: r1 now seals under the new key
  CHECK(notes_mention(r1_run, "took the new key"));
  CHECK(rekey_state(r1, "hq") == "switched");
  insert_item(hub, 22, "new key");
  run_site(c, hub);  // r1's switch record accepts the offer: the hub switches; n+2 under it
  CHECK(rekey_state(hub, "r1") == "switched");
  const transport::Key k1 = pair_key(hub, "r1");
  CHECK_FALSE(k1 == k0);
  {
    // `sqlpost resend` re-splits each waiting message under the key it was sealed with.
    exec(*hub.db, "BEGIN IMMEDIATE");
    auto split = reencode_outbox(*hub.db, "r1", 0, 4096);
    REQUIRE_MESSAGE(split.ok(), (split.ok() ? "" : split.error().message));
    exec(*hub.db, "COMMIT");
    CHECK(split->messages >= 2);
    auto st = hub.db->prepare("SELECT seq, mail FROM sqlpost_outbox ORDER BY seq").value();
    std::int64_t old_sealed = 0;
    std::int64_t new_sealed = 0;
    while (st.step().value()) {
      const std::string mail = st.column_text(1);
      old_sealed += transport::open_part(mail, k0, "r1").ok() ? 1 : 0;
      new_sealed += transport::open_part(mail, k1, "r1").ok() ? 1 : 0;
    }
    CHECK(old_sealed > 0);  // message n+1 and before
    CHECK(new_sealed > 0);  // message n+2
  }
  run_site(c, r1);  // n+2 waits for n+1
  CHECK(text_of(*r1.db, "SELECT name FROM item WHERE id = 22").empty());
  c.network().put("r1@r1.test", held[0]);  // the old-key mail arrives after the switch
  run_site(c, r1);
  CHECK(text_of(*r1.db, "SELECT name FROM item WHERE id = 21") == "old key, arrives late");
  CHECK(text_of(*r1.db, "SELECT name FROM item WHERE id = 22") == "new key");
  CHECK(rejected(r1) == 0);
  converge(c);
  CHECK(rekey_state(hub, "r1") == "done");
  CHECK(rekey_state(r1, "hq") == "done");
  // Once both forgot the old key, another copy of it fails authentication: refused,
  // kept in sqlpost_rejected, nothing applied, and the reason names the rotation.
  const auto rows_before = table_rows(*r1.db, "item");
  const std::int64_t applied_before =
      query_int(*r1.db, "SELECT applied_seq FROM sqlpost_streams WHERE site = 'hq'");
  c.network().put("r1@r1.test", held[0]);
  const RunReport late = run_site(c, r1);
  CHECK(rejected(r1) == 1);
  CHECK(notes_mention(late, "was rotated"));
  CHECK(table_rows(*r1.db, "item") == rows_before);
  CHECK(query_int(*r1.db, "SELECT applied_seq FROM sqlpost_streams WHERE site = 'hq'") ==
        applied_before);
  CHECK(text_of(*r1.db, "SELECT halted FROM sqlpost_streams WHERE site = 'hq'").empty());
  insert_item(hub, 23, "after the late copy");
  converge(c);
}

TEST_CASE("a partner's rotation record for a pair it is not part of is refused") {
  TempDir dir;
  Cluster c(dir, 2, 6, {});
  Site& hub = c.site("hq");
  Site& r2 = c.site("r2");
  const std::string r1_key = pair_key_hex(hub, "r1");
  const transport::Key r2_key = pair_key(r2, "hq");
  // r2 (hostile) sends, under its own key, a rotation record for the pair (r1, hq).
  Payload payload;
  payload.rekey = RekeyRecord{.step = RekeyStep::kOffer,
                              .sender = "r1",
                              .receiver = "hq",
                              .key = std::vector<std::uint8_t>(32, 0x42),
                              .replaces = key_id(transport::key_from_hex(r1_key).value())};
  const auto bytes = encode_payload(payload);
  const auto mails =
      transport::encode_message({"r2", "hq", 1}, "r2@r2.test", "hq@hq.test", bytes, r2_key, 8192)
          .value();
  REQUIRE(mails.size() == 1);
  c.network().put("hq@hq.test", mails[0]);
  // And the same, claiming to come from r1 (it cannot seal under r1's key).
  const auto forged =
      transport::encode_message({"r1", "hq", 1}, "r1@r1.test", "hq@hq.test", bytes, r2_key, 8192)
          .value();
  c.network().put("hq@hq.test", forged[0]);
  run_site(c, hub);
  CHECK(rejected(hub) == 1);  // the forgery fails authentication
  CHECK(text_of(*hub.db, "SELECT halted FROM sqlpost_streams WHERE site = 'r2'")
            .find("refused a key-rotation record for the pair (r1, hq)") != std::string::npos);
  CHECK(pair_key_hex(hub, "r1") == r1_key);  // unchanged
  CHECK(rekey_state(hub, "r1").empty());
  CHECK(rekey_state(hub, "r2").empty());
  CHECK(query_int(*hub.db, "SELECT applied_seq FROM sqlpost_streams WHERE site = 'r2'") == 0);
  // The pair (hq, r1) goes on under its own key.
  insert_item(hub, 30, "hub");
  insert_item(c.site("r1"), 1'000'030, "r1");
  for (int i = 0; i < 6; ++i) {
    run_site(c, hub);
    run_site(c, c.site("r1"));
    c.clock() += 60;
  }
  const std::string diff = compare_tables(*hub.db, *c.site("r1").db, "item");
  CHECK_MESSAGE(diff.empty(), diff);
  CHECK(rejected(c.site("r1")) == 0);
}

TEST_CASE(
    "a site restored from a backup older than a rotation refuses the new-key mail and "
    "applies nothing unauthenticated") {
  TempDir dir;
  Cluster c(dir, 1, 8, {});
  c.log_retention = std::int64_t{7} * 86400;  // the hub can send again what r1 lost
  converge(c);
  Site& hub = c.site("hq");
  Site& r1 = c.site("r1");
  const std::string copy = dir.path("r1-backup.db");
  std::filesystem::copy_file(r1.path, copy);
  start(c, "hq", "r1");
  insert_item(hub, 40, "during the rotation");
  converge(c);
  REQUIRE(rekey_state(hub, "r1") == "done");
  // r1 comes back from the backup with the old key only.
  r1.db.reset();
  std::filesystem::copy_file(copy, r1.path, std::filesystem::copy_options::overwrite_existing);
  r1.db = std::make_unique<Database>(open_db(r1.path));
  r1.messages_applied = static_cast<std::size_t>(
      query_int(*r1.db, "SELECT ifnull(sum(applied_seq - skipped), 0) FROM sqlpost_streams"));
  insert_item(hub, 41, "after the restore");
  insert_item(r1, 1'000'041, "r1 after the restore");
  const std::int64_t r1_items = query_int(*r1.db, "SELECT count(*) FROM item");
  for (int i = 0; i < 4; ++i) {
    run_site(c, hub);
    run_site(c, r1);
    c.clock() += 60;
  }
  // Nothing sealed under a key r1 does not hold was applied there; each side keeps
  // the other's mail aside, and the hub's reason says the pair needs re-keying.
  CHECK(query_int(*r1.db, "SELECT count(*) FROM item") == r1_items);
  CHECK(text_of(*r1.db, "SELECT name FROM item WHERE id = 41").empty());
  CHECK(rejected(r1) > 0);
  CHECK(rejected(hub) > 0);
  CHECK(text_of(*hub.db, "SELECT reason FROM sqlpost_rejected LIMIT 1")
            .find("set the pair's key "
                  "again") != std::string::npos);
  CHECK(text_of(*hub.db, "SELECT name FROM item WHERE id = 1000041").empty());
  // r1 never heard of the rotation, yet its reason points at the same fix.
  const std::string r1_reason = text_of(*r1.db, "SELECT reason FROM sqlpost_rejected LIMIT 1");
  CHECK_MESSAGE(r1_reason.find("restored from a backup") != std::string::npos, r1_reason);
  CHECK_MESSAGE(r1_reason.find("set the pair's key again by hand") != std::string::npos, r1_reason);

  // Re-keyed by hand (`sqlpost site key hq.db r1 --export F`, then `sqlpost site key
  // r1.db hq --import F`): r1's outbox is sealed again under the hub's key, the mail
  // refused on both sides comes again from the outboxes, restore recovery runs, and
  // nothing is lost.
  {
    exec(*r1.db, "BEGIN IMMEDIATE");
    auto set = set_pair_key(*r1.db, "hq", pair_key(hub, "r1"), c.max_message_bytes);
    REQUIRE_MESSAGE(set.ok(), (set.ok() ? "" : set.error().message));
    exec(*r1.db, "COMMIT");
  }
  CHECK(pair_key_hex(r1, "hq") == pair_key_hex(hub, "r1"));
  CHECK(rekey_state(r1, "hq").empty());
  converge(c, 300);
  CHECK(text_of(*r1.db, "SELECT name FROM item WHERE id = 41") == "after the restore");
  CHECK(text_of(*hub.db, "SELECT name FROM item WHERE id = 1000041") == "r1 after the restore");
}
