// The message payload (CBOR): round trip and hostile input.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <limits>
#include <string_view>

#include "replication/payload.h"
#include "replication/payload_cbor.h"
#include "replication/payload_stream.h"

using namespace sqlpost;

namespace {

Payload sample() {
  Payload p;
  p.ack = 41;
  p.resend_from = 7;
  p.tables.push_back(TableBlock{"item", {"id", "name", "data"}, 1});
  WireChange insert{0,
                    ChangeOp::kInsert,
                    {Value(std::int64_t{1})},
                    {1, 2},
                    {Value::text("n\xff\xfe"), Value(Blob{{0, 1}})},
                    {}};
  WireChange update{0,   ChangeOp::kUpdate, {Value(std::numeric_limits<std::int64_t>::min())},
                    {1}, {Value(-0.0)},     {Value()}};
  WireChange remove{0, ChangeOp::kDelete, {Value(std::int64_t{3})}, {2}, {}, {Value(Blob{})}};
  p.epochs.push_back(EpochBlock{5, {insert, update}});
  p.epochs.push_back(EpochBlock{6, {remove}});
  return p;
}

}  // namespace

TEST_CASE("payload round trip keeps every value exactly") {
  const Payload p = sample();
  const auto bytes = encode_payload(p);
  auto back = decode_payload(bytes);
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message));
  CHECK(back.value() == p);
  CHECK(back->change_count() == 3);
}

TEST_CASE("truncated or bit-flipped payloads give errors, never a crash") {
  const auto bytes = encode_payload(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_payload(std::span(bytes.data(), n));
    CHECK_FALSE(r.ok());
  }
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const int mask : {0x01, 0x80, 0xff}) {
      auto copy = bytes;
      copy[i] = static_cast<std::uint8_t>(copy[i] ^ mask);
      auto r = decode_payload(copy);  // may decode to a different valid payload
      rejected += r.ok() ? 0 : 1;
      if (!r.ok()) {
        CHECK((r.error().code == Errc::kCorruption || r.error().code == Errc::kUnsupported ||
               r.error().code == Errc::kLimitExceeded));
      }
    }
  }
  CHECK(rejected > bytes.size());
}

TEST_CASE("passthrough SQL round-trips as version 2; malformed passthrough is refused") {
  Payload p;
  WireChange sql;
  sql.op = ChangeOp::kPassthrough;
  sql.key = {Value::text("ALTER TABLE t ADD COLUMN c")};
  sql.new_values = {Value::text("r1")};
  p.epochs.push_back(EpochBlock{3, {sql}});
  const auto bytes = encode_payload(p);
  auto back = decode_payload(bytes);
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  CHECK(*back == p);
  CHECK(back->has_passthrough());
  p.epochs[0].changes[0].key = {Value(std::int64_t{1})};  // not text
  auto bad = decode_payload(encode_payload(p));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("passthrough") != std::string::npos);
}

TEST_CASE("article records round-trip as version 3; malformed ones are refused") {
  Payload p;
  WireChange added;
  added.op = ChangeOp::kArticleAdded;
  added.key = {Value::text("p"), Value::text("c"), Value::text("{\"sql\":[]}")};
  added.new_values = {Value()};
  WireChange removed;
  removed.op = ChangeOp::kArticleRemoved;
  removed.key = {Value::text("p"), Value::text("c")};
  removed.new_values = {Value::text("r1")};
  p.epochs.push_back(EpochBlock{3, {added, removed}});
  const auto bytes = encode_payload(p);
  CHECK(payload_document_version(p) == kPayloadVersionWithArticles);
  auto back = decode_payload(bytes);
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  CHECK(*back == p);
  CHECK(back->has_article_records());

  p.epochs[0].changes[0].key.pop_back();  // no definition
  auto bad = decode_payload(encode_payload(p));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("article record") != std::string::npos);
  p.epochs[0].changes[0].key.push_back(
      Value::text(std::string(kMaxArticleDefinitionBytes + 1, 'x')));
  auto big = decode_payload(encode_payload(p));
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().code == Errc::kLimitExceeded);
}

TEST_CASE("key-rotation records round-trip in the head; malformed ones are refused") {
  Payload p;
  p.ack = 3;
  p.rekey = RekeyRecord{.step = RekeyStep::kOffer,
                        .sender = "hq",
                        .receiver = "r1",
                        .key = std::vector<std::uint8_t>(32, 7),
                        .replaces = std::vector<std::uint8_t>(kKeyIdBytes, 9)};
  auto back = decode_payload(encode_payload(p));
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  CHECK(*back == p);
  p.rekey = RekeyRecord{.step = RekeyStep::kSwitched,
                        .sender = "r1",
                        .receiver = "hq",
                        .key = {},
                        .replaces = std::vector<std::uint8_t>(kKeyIdBytes, 4)};
  back = decode_payload(encode_payload(p));
  REQUIRE_MESSAGE(back.ok(), back.error().message);
  CHECK(*back == p);

  p.rekey = RekeyRecord{.step = RekeyStep::kOffer,
                        .sender = "hq",
                        .receiver = "r1",
                        .key = std::vector<std::uint8_t>(31, 7),  // not a key
                        .replaces = std::vector<std::uint8_t>(kKeyIdBytes, 9)};
  auto short_key = decode_payload(encode_payload(p));
  REQUIRE_FALSE(short_key.ok());
  CHECK(short_key.error().code == Errc::kCorruption);
  p.rekey->key.assign(32, 7);
  p.rekey->step = static_cast<RekeyStep>(3);
  auto unknown = decode_payload(encode_payload(p));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("key-rotation step") != std::string::npos);
  p.rekey->step = RekeyStep::kSwitched;  // a switch record carries no key
  auto keyed = decode_payload(encode_payload(p));
  REQUIRE_FALSE(keyed.ok());
  CHECK(keyed.error().code == Errc::kCorruption);
}

TEST_CASE("deep nesting, wrong version and bad shapes are exact errors") {
  std::vector<std::uint8_t> deep(100000, 0x81);  // arrays of arrays of ...
  deep.push_back(0x01);
  auto r = decode_payload(deep);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::kCorruption);
  CHECK(r.error().message.find("nested deeper") != std::string::npos);

  Payload p = sample();
  // The version is the first map value: {"v": N, ...}; N + 1 is from a newer sqlpost.
  const auto newer = [](std::vector<std::uint8_t> bytes, std::uint8_t version) {
    for (std::size_t i = 0; i + 2 < bytes.size(); ++i) {
      if (bytes[i] == 0x61 && bytes[i + 1] == 'v' && bytes[i + 2] == version) {
        bytes[i + 2] = version + 1;
        break;
      }
    }
    return bytes;
  };
  auto v5 = decode_payload(newer(encode_payload(p), kPayloadVersionStreamed));
  REQUIRE_FALSE(v5.ok());
  CHECK(v5.error().code == Errc::kUnsupported);
  REQUIRE(newer(encode_payload_document(p), 1) != encode_payload_document(p));
  auto v2 = decode_payload(newer(encode_payload_document(p), 1));
  CHECK(v2.ok());  // versions 1 to 3 are read in the document layout
  auto v4_document = newer(newer(newer(encode_payload_document(p), 1), 2), 3);
  auto wrong_layout = decode_payload(v4_document);
  REQUIRE_FALSE(wrong_layout.ok());
  CHECK(wrong_layout.error().code == Errc::kCorruption);

  p.epochs[0].changes[0].columns = {7};  // a column index outside the table
  p.epochs[0].changes[0].new_values = {Value()};
  auto bad = decode_payload(encode_payload(p));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("column index") != std::string::npos);

  p = sample();
  p.epochs[0].changes[0].table = 3;
  CHECK(decode_payload(encode_payload(p)).error().message.find("table index") != std::string::npos);
}

TEST_CASE("health records round-trip; oversize or malformed ones are exact errors") {
  Payload p = sample();
  p.health.push_back(SiteHealth{
      "mid", "", "0.9.0", 1'800'000'000, 2, 1, 1'799'999'000, {{"hq", "no such column: extra"}}});
  p.health.push_back(SiteHealth{"leaf", "mid", "0.8.0", 1'799'000'000, 0, 0, 0, {}});
  auto back = decode_payload(encode_payload(p));
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message));
  CHECK(back.value() == p);

  Payload none = sample();  // without health: no "h" field at all (older readers)
  CHECK(encode_payload(none).size() < encode_payload(p).size());
  CHECK(decode_payload(encode_payload(none))->health.empty());

  Payload long_text = sample();
  long_text.health.push_back(
      SiteHealth{"x", "", std::string(kMaxHealthText + 1, 'v'), 1, 0, 0, 0, {}});
  auto refused = decode_payload(encode_payload(long_text));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Errc::kCorruption);

  Payload many_halted = sample();
  SiteHealth h{"x", "", "v", 1, 0, 0, 0, {}};
  h.halted.assign(kMaxHealthHalted + 1, {"p", "why"});
  many_halted.health.push_back(h);
  CHECK(decode_payload(encode_payload(many_halted)).error().code == Errc::kCorruption);
}

TEST_CASE("the decode budget lets an honest one-million-row message through") {
  // About 7 MB compressed (tools/bench-scale.sh 1000000) needs about 600 MB of budget;
  // the cap used to be 512 MiB, which set such a message aside as hostile.
  CHECK(decode_budget(std::size_t{7} << 20) >= std::size_t{1} << 30);
  CHECK(decode_budget(std::size_t{7} << 20) <= kDefaultMaxDecodeBytes);
  CHECK(decode_budget(1000) == kDecodeFloorBytes);  // small messages stay small
  CHECK(decode_budget(std::size_t{7} << 20, std::size_t{64} << 20) == std::size_t{64} << 20);
}

TEST_CASE("restore fields round-trip, are optional, and are checked") {
  Payload p = sample();
  p.ack_digest = std::vector<std::uint8_t>(kMessageDigestBytes, 0xAB);
  p.prev_digest = std::vector<std::uint8_t>(kMessageDigestBytes, 0x01);
  p.confirmed = 12;
  p.restored_from = 9;
  p.reextract = true;
  auto back = decode_payload(encode_payload(p));
  REQUIRE(back.ok());
  CHECK(back.value() == p);
  // A payload without them (an older sender) reads with none of them set.
  auto old = decode_payload(encode_payload(sample()));
  REQUIRE(old.ok());
  CHECK(old->ack_digest.empty());
  CHECK(old->prev_digest.empty());
  CHECK(old->confirmed == 0);
  CHECK(old->restored_from == 0);
  CHECK_FALSE(old->reextract);
  // A digest of the wrong size is refused, not cut or padded.
  p.ack_digest.pop_back();
  auto bad = decode_payload(encode_payload(p));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::kCorruption);
  // Identities: 16 bytes, equal for equal payloads, different otherwise.
  const auto a = encode_payload(sample());
  Payload other = sample();
  other.ack = 42;
  CHECK(message_identity(a).size() == kMessageDigestBytes);
  CHECK(message_identity(a) == message_identity(encode_payload(sample())));
  CHECK(message_identity(a) != message_identity(encode_payload(other)));
}

TEST_CASE("nested indefinite-length strings are refused, not a stack overflow") {
  // fuzz-apply's finding: a map, an indefinite array, then thousands of 0x5F (the
  // start of an indefinite-length byte string) made nlohmann's reader recurse until
  // the stack ran out.
  std::vector<std::uint8_t> bytes = {0xa6, 0x9f, 0x61, '#'};
  bytes.insert(bytes.end(), 200'000, 0x5f);
  auto refused = decode_payload(bytes);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == Errc::kCorruption);
  CHECK(refused.error().message.find("indefinite-length string") != std::string::npos);
  std::vector<std::uint8_t> text = {0xa1, 0x61, 'v', 0x7f, 0x61, 'a', 0xff};  // text, too
  CHECK(decode_payload(text).error().code == Errc::kCorruption);
  // '_' (0x5F) inside a definite string is content, not a string head.
  Payload p = sample();
  p.tables[0].table = std::string(100, '_');
  auto back = decode_payload(encode_payload(p));
  REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message));
  CHECK(back.value() == p);
}

// ---- the streamed layout (version 4, replication/payload_stream.h)

namespace {

// 25 changes over two tables and three epochs.
Payload many() {
  Payload p = sample();
  p.tables.push_back(TableBlock{"tag", {"id", "label"}, 1});
  EpochBlock e{9, {}};
  for (std::int64_t i = 0; i < 22; ++i) {
    e.changes.push_back(WireChange{1, ChangeOp::kInsert, {Value(i)}, {1}, {Value::text("t")}, {}});
  }
  p.epochs.push_back(e);
  return p;
}

}  // namespace

TEST_CASE("a streamed payload is read in batches, each with every table so far") {
  const Payload p = many();
  const auto bytes = encode_payload(p);
  REQUIRE(is_streamed_payload(bytes));
  SpanSource source(bytes);
  PayloadReader reader(source, {});
  auto head = reader.head();
  REQUIRE(head.ok());
  CHECK(head->ack == 41);
  CHECK(head->epochs.empty());
  Payload whole = head.value();
  std::vector<std::size_t> sizes;
  Payload batch;
  for (;;) {
    auto more = reader.next(batch, 10);
    REQUIRE(more.ok());
    if (!more.value()) {
      break;
    }
    sizes.push_back(batch.change_count());
    whole.tables = batch.tables;
    for (auto& e : batch.epochs) {
      if (!whole.epochs.empty() && whole.epochs.back().epoch == e.epoch) {
        whole.epochs.back().changes.insert(whole.epochs.back().changes.end(), e.changes.begin(),
                                           e.changes.end());
      } else {
        whole.epochs.push_back(e);
      }
    }
  }
  CHECK(sizes == std::vector<std::size_t>{10, 10, 5});
  CHECK(whole == p);
  CHECK(decode_payload(bytes).value() == p);
}

TEST_CASE("truncated, trailing, miscounted or oversize streamed payloads are exact errors") {
  const auto bytes = encode_payload(many());
  const auto error_of = [](std::vector<std::uint8_t> b) {
    auto r = decode_payload(b);
    REQUIRE_FALSE(r.ok());
    return r.error();
  };
  const auto end = encode_end(25);
  std::vector<std::uint8_t> body(bytes.begin(),
                                 bytes.end() - static_cast<std::ptrdiff_t>(end.size()));
  CHECK(error_of(body).message.find("without its end record") != std::string::npos);
  auto cut = bytes;
  cut.pop_back();
  CHECK(error_of(cut).code == Errc::kCorruption);
  auto trailing = bytes;
  trailing.insert(trailing.end(), end.begin(), end.end());
  CHECK(error_of(trailing).message.find("after the end record") != std::string::npos);
  auto miscounted = body;
  const auto wrong = encode_end(24);
  miscounted.insert(miscounted.end(), wrong.begin(), wrong.end());
  CHECK(error_of(miscounted).message.find("counts 24 changes") != std::string::npos);
  // A record announcing 2^40 bytes is refused before anything is read or allocated.
  auto huge = encode_head(Payload{});
  huge.insert(huge.end(), {0x5B, 0, 0, 1, 0, 0, 0, 0, 0});
  CHECK(error_of(huge).code == Errc::kLimitExceeded);
  // Versions 1-3 are one CBOR map, not a record: told apart by the first byte.
  CHECK_FALSE(is_streamed_payload(encode_payload_document(many())));
  CHECK(decode_payload(encode_payload_document(many())).value() == many());
}

TEST_CASE("an acknowledgement-only streamed payload carries no changes") {
  Payload ack;
  ack.kind = PayloadKind::kAckOnly;
  ack.ack = 3;
  CHECK(decode_payload(encode_payload(ack)).value() == ack);
  Payload sneaky = many();
  sneaky.kind = PayloadKind::kAckOnly;
  auto r = decode_payload(encode_payload(sneaky));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::kCorruption);
}

TEST_CASE("the streamed layout is byte for byte what docs/format.md shows") {
  Payload p;
  p.tables.push_back(TableBlock{"item", {"id", "name"}, 1});
  p.epochs.push_back(EpochBlock{
      5,
      {WireChange{0, ChangeOp::kInsert, {Value(std::int64_t{1})}, {1}, {Value::text("x")}, {}}}});
  const std::vector<std::uint8_t> documented = {
      0x4d, 0xa4, 0x61, 0x61, 0x00, 0x61, 0x6b, 0x00, 0x61, 0x72, 0x00, 0x61, 0x76, 0x04,  // head
      0x51, 0x84, 0x00, 0x64, 0x69, 0x74, 0x65, 0x6d, 0x82, 0x62, 0x69, 0x64, 0x64, 0x6e,
      0x61, 0x6d, 0x65, 0x01,                                                        // table
      0x43, 0x82, 0x01, 0x05,                                                        // epoch
      0x4c, 0x87, 0x02, 0x00, 0x01, 0x81, 0x01, 0x81, 0x01, 0x81, 0x61, 0x78, 0x80,  // change
      0x43, 0x82, 0x03, 0x01};                                                       // end
  const auto bytes = encode_payload(p);
  std::string hex;
  for (const auto b : bytes) {
    static constexpr std::string_view kDigits = "0123456789abcdef";
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
    hex += ' ';
  }
  CAPTURE(hex);
  CHECK(bytes == documented);
}

namespace {

// A version-4 change record, [2, table, op, key, columns, new, old], as BodyWriter writes it.
std::vector<std::uint8_t> change_record(const WireChange& c) {
  auto item = payload_detail::change_to_json(c);
  item.insert(item.begin(), 2);
  return nlohmann::json::to_cbor(item);
}

}  // namespace

TEST_CASE("the one-pass change decoder agrees with the general one, on every damaged copy") {
  const Payload p = sample();
  std::size_t taken = 0;
  std::size_t given_up = 0;
  for (const auto& e : p.epochs) {
    for (const auto& c : e.changes) {
      const auto record = change_record(c);
      const auto fast = payload_detail::fast_change_from_cbor(record, p.tables, 1 << 20);
      REQUIRE(fast.has_value());  // a plain change record takes the one-pass way
      CHECK(*fast == c);
      for (std::size_t i = 0; i < record.size(); ++i) {
        for (const int mask : {0x01, 0x02, 0x10, 0x80, 0xff}) {
          auto copy = record;
          copy[i] = static_cast<std::uint8_t>(copy[i] ^ mask);
          const auto one_pass = payload_detail::fast_change_from_cbor(copy, p.tables, 1 << 20);
          const auto general = payload_detail::general_change_from_cbor(copy, p.tables, {});
          if (!one_pass) {
            ++given_up;  // the general way decides (and names the problem)
            continue;
          }
          ++taken;
          REQUIRE_MESSAGE(general.ok(),
                          "the one-pass decoder accepted what the general one "
                          "refuses: "
                              << general.error().message);
          CHECK(*one_pass == general.value());
        }
      }
    }
  }
  CHECK(taken > 0);
  CHECK(given_up > 0);
  SUBCASE("a value over limits.max_value_bytes goes the general way, which refuses it") {
    WireChange big{0,
                   ChangeOp::kInsert,
                   {Value(std::int64_t{1})},
                   {1, 2},
                   {Value::text(std::string(100, 'x')), Value()},
                   {}};
    const auto record = change_record(big);
    CHECK_FALSE(payload_detail::fast_change_from_cbor(record, p.tables, 99).has_value());
    CHECK(payload_detail::fast_change_from_cbor(record, p.tables, 100).has_value());
  }
}
