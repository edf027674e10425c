// fuzz-apply: an authenticated but hostile partner. Arbitrary bytes are decoded as
// a payload (bounded decoding) and, when they decode, applied to an in-memory site
// with published tables — as from a child (authorization, row subsets, conflicts)
// or from the parent (passthrough in the sandbox), chosen by the first byte — inside
// a transaction that is rolled back, so every input starts from the same site.
// Seeds: SQLPOST_FUZZ_SEEDS=DIR ./fuzz-apply -runs=0 writes real messages (made
// by the routing code from real changes) into DIR; tools/fuzz.sh does that.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <span>
#include <string>

#include "replication/apply.h"
#include "replication/authorize.h"
#include "replication/changelog.h"
#include "replication/payload.h"
#include "replication/payload_cbor.h"
#include "replication/routing.h"
#include "replication/subsets.h"
#include "schema/metadata.h"
#include "schema/migrations.h"

namespace {

using namespace sqlpost;  // NOLINT(google-build-using-namespace)

void must(const Result<>& r) {
  if (!r.ok()) {
    std::fprintf(stderr, "fuzz-apply setup: %s\n", r.error().message.c_str());
    std::abort();
  }
}

struct FuzzSite {
  Database db;
  Partner child;
  Partner parent;
  ApplyContext from_child;
  ApplyContext from_parent;
};

Database open_memory() {
  auto db = Database::open(":memory:", Database::Mode::kReadWriteCreate);
  if (!db.ok()) {
    std::abort();
  }
  return std::move(db).value();
}

FuzzSite make_site() {
  FuzzSite s{open_memory(), {}, {}, {}, {}};
  must(s.db.exec(
      "CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, data BLOB);"
      "CREATE TABLE tag(item_id INTEGER, label TEXT, note, PRIMARY KEY (item_id, label)) "
      "WITHOUT ROWID;"
      "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT NOT NULL, region TEXT, "
      "CHECK (length(name) < 100));"
      "CREATE TABLE secret(id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO item VALUES (1, 'one', 1, 1.5, x'00'), (2, 'two', 2, 2.5, NULL);"
      "INSERT INTO customer VALUES (1, 'east', 'east'), (2, 'west', 'west');"));
  must(create_site_tables(s.db));
  must(init_site(s.db, LocalSite{"hq", "hq@hq.test", Role::kConsolidated, ""}));
  must(publish(s.db, Article{"all", "item", {}, "", "", "incoming"}));
  must(publish(s.db, Article{"all", "tag", {}, "", "", "newest:note"}));
  must(publish(s.db,
               Article{"sales", "customer", {"id", "name", "region"}, "", "region", "incoming"}));
  s.child = Partner{"c1", "c1@c1.test", Relation::kChild, std::vector<std::uint8_t>(32, 1), 0};
  must(add_partner(s.db, s.child));
  must(subscribe(s.db, Subscription{"c1", "all", ""}));
  must(subscribe(s.db, Subscription{"c1", "sales", "east"}));
  s.parent = Partner{"p0", "p0@p0.test", Relation::kParent, std::vector<std::uint8_t>(32, 2), 0};
  for (ApplyContext* c : {&s.from_child, &s.from_parent}) {
    const bool child = c == &s.from_child;
    c->local_site = "hq";
    c->from_site = child ? "c1" : "p0";
    c->decides = child;
    c->now = 1'000'000;
    c->authorization = authorization_for(s.db, child ? s.child : s.parent).value();
    if (child) {
      c->subset = SubsetFilter::load(s.db, s.child).value();
    }
  }
  return s;
}

FuzzSite& site() {
  static FuzzSite s = make_site();
  return s;
}

// Real messages: the routing code's payloads for the child after real changes.
void write_seeds(const char* dir) {
  FuzzSite& s = site();
  must(s.db.exec(
      "INSERT INTO item VALUES (3, 'three', 3, 3.5, x'0102');"
      "UPDATE item SET name = 'uno', qty = NULL WHERE id = 1; DELETE FROM item WHERE id = 2;"
      "INSERT INTO tag VALUES (1, 'red', 5), (3, 'blue', 'x');"
      "UPDATE customer SET region = 'west' WHERE id = 1;"
      "INSERT INTO customer VALUES (3, 'new', 'east');"));
  const auto epoch = cut_epoch(s.db, 1'000'000);
  auto payload = collect_changes_for(s.db, s.child, 0, epoch.value()).value();
  payload.ack = 3;
  int n = 0;
  const auto write = [&](const Payload& p) {
    const auto bytes = encode_payload(p);
    std::ofstream out(std::string(dir) + "/seed-" + std::to_string(++n) + ".cbor",
                      std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  };
  write(payload);
  Payload passthrough;
  WireChange w;
  w.op = ChangeOp::kPassthrough;
  w.key = {Value::text("ALTER TABLE item ADD COLUMN extra TEXT")};
  w.new_values = {Value()};
  passthrough.epochs.push_back(EpochBlock{2, {w}});
  write(passthrough);
  Payload ack;
  ack.kind = PayloadKind::kAckOnly;
  ack.ack = 7;
  write(ack);
}

// The one-pass change decoder (payload_cbor.h) must agree with the general one on
// every record it accepts.
void check_one_pass_decoder(std::span<const std::uint8_t> record) {
  static const std::vector<TableBlock> tables = {
      {"item", {"id", "name", "qty", "price", "data"}, 1},
      {"tag", {"item_id", "label", "note"}, 2}};
  const auto one_pass = payload_detail::fast_change_from_cbor(record, tables, std::size_t{1} << 20);
  if (!one_pass) {
    return;
  }
  const auto general = payload_detail::general_change_from_cbor(record, tables, DecodeLimits{});
  if (!general.ok() || !(general.value() == *one_pass)) {
    (void)std::fprintf(stderr, "fuzz-apply: the one-pass decoder disagrees with the general one\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {  // NOLINT
  if (const char* dir = std::getenv("SQLPOST_FUZZ_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  (void)site();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(  // NOLINT(readability-identifier-naming)
    const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  FuzzSite& s = site();
  const bool from_parent = (data[0] & 1U) != 0;
  const std::span<const std::uint8_t> bytes(data + 1, size - 1);
  check_one_pass_decoder(bytes);
  DecodeLimits limits;
  limits.max_changes = 10'000;
  limits.memory_budget = decode_budget(bytes.size());
  auto payload = decode_payload(bytes, limits);
  if (!payload.ok()) {
    return 0;
  }
  auto tx = Transaction::begin(s.db);
  if (!tx.ok()) {
    std::abort();
  }
  (void)apply_payload(s.db, payload.value(), from_parent ? s.from_parent : s.from_child);
  return 0;  // the transaction rolls back: the next input sees the same site
}
