// Tests of the message codec: round trips, the 7-bit/76-column/size promises, and
// hostile input (truncation, bit flips, wrong key/receiver/version, limits, bombs).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "transport/codec.h"
#include "transport/message_stream.h"

namespace {

using namespace sqlpost;             // NOLINT(google-build-using-namespace)
using namespace sqlpost::transport;  // NOLINT(google-build-using-namespace)

using Bytes = std::vector<std::uint8_t>;

Key test_key(std::uint8_t seed) {
  Key::Bytes b{};
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(seed + i * 13);
  return Key(b);
}

Bytes random_payload(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(rng());
  return out;
}

Bytes text_payload(std::string_view s) {
  Bytes out(s.begin(), s.end());
  return out;
}

// Tests are deterministic on purpose: every random choice comes from a fixed seed.
std::mt19937_64 seeded_rng(std::uint64_t seed) { return std::mt19937_64(seed); }

MessageHeader header_ab(std::uint64_t seq = 5) { return MessageHeader{"siteA", "siteB", seq}; }

std::vector<std::string> encode(const Bytes& payload, std::size_t max = kDefaultMaxMessageBytes,
                                const MessageHeader& h = header_ab()) {
  auto mails = encode_message(h, "a@example.com", "b@example.com", payload, test_key(1), max);
  REQUIRE_MESSAGE(mails.ok(), mails.error().message);
  return std::move(mails).value();
}

std::vector<OpenedPart> open_all(const std::vector<std::string>& mails) {
  std::vector<OpenedPart> parts;
  for (const auto& m : mails) {
    auto p = open_part(m, test_key(1), "siteB");
    REQUIRE_MESSAGE(p.ok(), p.error().message);
    parts.push_back(std::move(p).value());
  }
  return parts;
}

Bytes decode(const std::vector<std::string>& mails) {
  auto payload = reassemble(open_all(mails));
  REQUIRE_MESSAGE(payload.ok(), payload.error().message);
  return std::move(payload).value();
}

// Every line ends in CRLF, is <= 76 characters, and every byte is 7-bit, not NUL.
// Returns "" or a description of the first violation.
std::string mail_shape_error(const std::string& mail) {
  if (mail.size() < 2 || mail.substr(mail.size() - 2) != "\r\n") return "no final CRLF";
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < mail.size(); ++i) {
    const auto c = static_cast<unsigned char>(mail[i]);
    if (c == 0 || c >= 128) return "byte " + std::to_string(i) + " is not 7-bit text";
    if (c == '\r' && (i + 1 == mail.size() || mail[i + 1] != '\n')) {
      return "bare CR at " + std::to_string(i);
    }
    if (c == '\r' && i - line_start > 76) return "line longer than 76 at " + std::to_string(i);
    if (c == '\n' && (i == 0 || mail[i - 1] != '\r')) return "bare LF at " + std::to_string(i);
    if (c == '\n') line_start = i + 1;
  }
  return "";
}

void check_mail_shape(const std::string& mail) { CHECK(mail_shape_error(mail).empty()); }

std::string replace_once(std::string s, std::string_view from, std::string_view to) {
  const auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  s.replace(pos, from.size(), to);
  return s;
}

Errc open_error(const std::string& mail, const Key& key = test_key(1),
                std::string_view receiver = "siteB") {
  auto r = open_part(mail, key, receiver);
  REQUIRE_FALSE(r.ok());
  return r.error().code;
}

// Splits the header block into whole fields (with their continuation lines).
std::vector<std::string> header_fields(const std::string& mail, std::string& body) {
  const auto end = mail.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  body = mail.substr(end + 2);
  std::vector<std::string> fields;
  std::size_t pos = 0;
  while (pos < end + 2) {
    const auto eol = mail.find("\r\n", pos);
    const std::string line = mail.substr(pos, eol + 2 - pos);
    if (line[0] == ' ' || line[0] == '\t') {
      fields.back() += line;
    } else {
      fields.push_back(line);
    }
    pos = eol + 2;
  }
  return fields;
}

std::string join(const std::vector<std::string>& fields, const std::string& body) {
  std::string out;
  for (const auto& f : fields) out += f;
  return out + body;
}

}  // namespace

TEST_CASE("round trip: small, empty, and multi-megabyte payloads in shuffled parts") {
  SUBCASE("small") {
    const Bytes payload = text_payload("hello, sqlpost");
    const auto mails = encode(payload);
    CHECK(mails.size() == 1);
    CHECK(decode(mails) == payload);
  }
  SUBCASE("empty") {
    const auto mails = encode({});
    CHECK(mails.size() == 1);
    CHECK(decode(mails).empty());
  }
  SUBCASE("3 MiB random, 16 KiB mails, shuffled") {
    const Bytes payload = random_payload(3 << 20, 42);
    auto mails = encode(payload, std::size_t{16} * 1024);
    CHECK(mails.size() > 190);
    for (const auto& m : mails) {
      CHECK(m.size() <= 16 * 1024);
      check_mail_shape(m);
    }
    auto parts = open_all(mails);
    std::shuffle(parts.begin(), parts.end(), seeded_rng(7));
    auto back = reassemble(std::move(parts));
    REQUIRE(back.ok());
    CHECK(*back == payload);
  }
  SUBCASE("5 MiB compressible, minimum mail size") {
    Bytes payload;
    for (int i = 0; payload.size() < (5U << 20); ++i) {
      const std::string row = "row " + std::to_string(i) + " value " + std::to_string(i * 31 % 977);
      payload.insert(payload.end(), row.begin(), row.end());
    }
    const auto mails = encode(payload, kMinMaxMessageBytes);
    for (const auto& m : mails) CHECK(m.size() <= kMinMaxMessageBytes);
    CHECK(decode(mails) == payload);
  }
}

TEST_CASE("every e-mail fits max_message_bytes, is 7-bit, CRLF, lines <= 76") {
  const std::string long_a(kMaxSiteNameBytes, 'a');
  const std::string long_b(kMaxSiteNameBytes, 'b');
  for (const std::size_t max : {std::size_t{4096}, std::size_t{4097}, std::size_t{5000},
                                std::size_t{10007}, std::size_t{65536}}) {
    for (const std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{3000}, std::size_t{100000}}) {
      for (const bool long_names : {false, true}) {
        const MessageHeader h{long_names ? long_a : "A", long_names ? long_b : "B", UINT64_MAX};
        auto mails = encode_message(h, "a@example.com", "b@example.com", random_payload(n, n),
                                    test_key(1), max);
        REQUIRE(mails.ok());
        for (const auto& m : *mails) {
          CHECK(m.size() <= max);
          check_mail_shape(m);
        }
        std::vector<OpenedPart> parts;
        for (const auto& m : *mails) {
          auto p = open_part(m, test_key(1), h.receiver);
          REQUIRE(p.ok());
          parts.push_back(std::move(p).value());
        }
        auto back = reassemble(std::move(parts));
        REQUIRE(back.ok());
        CHECK(*back == random_payload(n, n));
      }
    }
  }
}

TEST_CASE("parts use the mail size well") {
  const auto mails = encode(random_payload(200000, 3), 20000);
  for (std::size_t i = 0; i + 1 < mails.size(); ++i) CHECK(mails[i].size() > 18000);
}

TEST_CASE("headers, Message-ID and text part") {
  const auto mails = encode(text_payload("x"), kDefaultMaxMessageBytes, header_ab(9));
  const std::string& m = mails.front();
  CHECK(m.find("\r\nX-Sqlpost-Version: 1\r\n") != std::string::npos);
  CHECK(m.find("\r\nX-Sqlpost-Sender: siteA\r\n") != std::string::npos);
  CHECK(m.find("\r\nX-Sqlpost-Receiver: siteB\r\n") != std::string::npos);
  CHECK(m.find("\r\nX-Sqlpost-Sequence: 9\r\n") != std::string::npos);
  CHECK(m.find("\r\nX-Sqlpost-Part: 1\r\nX-Sqlpost-Parts: 1\r\n") != std::string::npos);
  CHECK(m.find("Message-ID: <sqlpost.siteA+siteB.9.1.1@sqlpost>\r\n") != std::string::npos);
  CHECK(m.find("MIME-Version: 1.0\r\n") != std::string::npos);
  CHECK(m.find("Subject: sqlpost message #9 part 1/1 from siteA to siteB\r\n") !=
        std::string::npos);
  CHECK(m.find("do not delete, edit or forward it") != std::string::npos);
  CHECK(m.find("Content-Transfer-Encoding: base64") != std::string::npos);
  // Stable: a second encoding has the same Message-ID.
  const auto again = encode(text_payload("x"), kDefaultMaxMessageBytes, header_ab(9));
  CHECK(again.front().find("<sqlpost.siteA+siteB.9.1.1@sqlpost>") != std::string::npos);
  CHECK(again.front() != m);  // fresh nonce
}

TEST_CASE("looks_like_sqlpost and peek_part") {
  const auto mails = encode(text_payload("payload"), kDefaultMaxMessageBytes, header_ab(77));
  CHECK(looks_like_sqlpost(mails.front()));
  const std::string foreign =
      "From: x@example.com\r\nSubject: hi\r\n\r\nX-Sqlpost-Version: 1 in the body\r\n";
  CHECK_FALSE(looks_like_sqlpost(foreign));
  CHECK_FALSE(looks_like_sqlpost(""));
  CHECK_FALSE(looks_like_sqlpost("garbage without line ends"));
  CHECK(looks_like_sqlpost("x-sqlpost-whatever: 1\n\n"));
  auto h = peek_part(mails.front());
  REQUIRE(h.ok());
  CHECK(h->version == 1);
  CHECK(h->sender == "siteA");
  CHECK(h->receiver == "siteB");
  CHECK(h->sequence == 77);
  CHECK(h->part == 1);
  CHECK(h->parts == 1);
  CHECK(peek_part(foreign).error().code == Errc::kCorruption);
}

TEST_CASE("truncation at every byte offset is an error") {
  const auto mails = encode(text_payload("a short message"));
  const std::string& m = mails.front();
  for (std::size_t n = 0; n < m.size(); ++n) {
    auto r = open_part(std::string_view(m).substr(0, n), test_key(1), "siteB");
    REQUIRE_MESSAGE(!r.ok(), "truncated at " << n << " of " << m.size());
  }
}

TEST_CASE("changing any byte is an error, or harmless with an identical payload") {
  const Bytes payload = text_payload("flip me if you can");
  const auto mails = encode(payload);
  const std::string& m = mails.front();
  const auto b64_start = m.find("\r\n\r\n", m.find("application/octet-stream")) + 4;
  const auto b64_end = m.rfind("\r\n--");
  std::size_t harmless = 0;
  std::size_t harmless_in_attachment = 0;
  for (const int mask : {0x01, 0x20, 0x80}) {
    for (std::size_t i = 0; i < m.size(); ++i) {
      std::string bad = m;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto opened = open_part(bad, test_key(1), "siteB");
      if (!opened.ok()) continue;
      ++harmless;
      if (i >= b64_start && i < b64_end) ++harmless_in_attachment;
      CHECK(opened->header.sequence == 5);
      std::vector<OpenedPart> parts;
      parts.push_back(std::move(opened).value());
      auto back = reassemble(std::move(parts));
      REQUIRE(back.ok());
      REQUIRE(*back == payload);
    }
  }
  CHECK(harmless > 0);  // e.g. the Subject or the human-readable text
  // Only the unused low bits of the last base64 character before '=' may be harmless.
  CHECK(harmless_in_attachment <= 2);
}

TEST_CASE("wrong key, wrong receiver, unknown version") {
  const auto mails = encode(text_payload("secret"));
  CHECK(open_error(mails.front(), test_key(2)) == Errc::kAuthentication);
  CHECK(open_error(mails.front(), test_key(1), "siteC") == Errc::kInvalidArgument);
  const std::string v2 =
      replace_once(mails.front(), "X-Sqlpost-Version: 1", "X-Sqlpost-Version: 2");
  CHECK(open_error(v2) == Errc::kUnsupported);
  CHECK(peek_part(v2).error().code == Errc::kUnsupported);
  const std::string vx =
      replace_once(mails.front(), "X-Sqlpost-Version: 1", "X-Sqlpost-Version: x");
  CHECK(open_error(vx) == Errc::kCorruption);
}

TEST_CASE("headers that disagree with the authenticated envelope") {
  const auto mails = encode(text_payload("secret"));
  const std::string& m = mails.front();
  CHECK(open_error(replace_once(m, "X-Sqlpost-Sequence: 5", "X-Sqlpost-Sequence: 6")) ==
        Errc::kCorruption);
  CHECK(open_error(replace_once(m, "X-Sqlpost-Sender: siteA", "X-Sqlpost-Sender: siteX")) ==
        Errc::kCorruption);
  // Receiver header forged to ours while the envelope says otherwise.
  auto to_c = encode_message({"siteA", "siteC", 5}, "a@x", "c@x", text_payload("s"), test_key(1),
                             kDefaultMaxMessageBytes);
  REQUIRE(to_c.ok());
  const std::string forged =
      replace_once(to_c->front(), "X-Sqlpost-Receiver: siteC", "X-Sqlpost-Receiver: siteB");
  CHECK(open_error(forged) == Errc::kCorruption);
  CHECK(open_error(replace_once(m, "X-Sqlpost-Part: 1", "X-Sqlpost-Part: 2")) ==
        Errc::kCorruption);  // part 2 of 1
  CHECK(open_error(replace_once(m, "X-Sqlpost-Sequence: 5", "X-Sqlpost-Sequence: 0")) ==
        Errc::kCorruption);
}

TEST_CASE("malformed base64 and MIME structure") {
  const auto mails = encode(text_payload("secret"));
  const std::string& m = mails.front();
  const auto b64 = m.find("\r\n\r\n", m.find("application/octet-stream")) + 4;
  std::string star = m;
  star[b64 + 3] = '*';
  CHECK(open_error(star) == Errc::kCorruption);
  CHECK(open_error(replace_once(m, "Content-Transfer-Encoding: base64",
                                "Content-Transfer-Encoding: 8bit")) == Errc::kCorruption);
  CHECK(open_error(replace_once(m, "multipart/mixed", "multipart/related")) == Errc::kCorruption);
  CHECK(open_error(replace_once(m, "=_sqlpost_boundary_=--", "=_sqlpost_boundary_=")) ==
        Errc::kCorruption);
  CHECK(open_error("") == Errc::kCorruption);
  CHECK(open_error("X-Sqlpost-Version: 1\r\n") == Errc::kCorruption);
}

TEST_CASE("headers in any order, any case, folded, LF line ends") {
  const Bytes payload = text_payload("robust parsing");
  const auto mails = encode(payload);
  std::string body;
  auto fields = header_fields(mails.front(), body);
  SUBCASE("reversed") { std::reverse(fields.begin(), fields.end()); }
  SUBCASE("shuffled") { std::shuffle(fields.begin(), fields.end(), seeded_rng(3)); }
  SUBCASE("lower-case names") {
    for (auto& f : fields) {
      const auto colon = f.find(':');
      std::transform(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(colon), f.begin(),
                     [](char c) { return static_cast<char>(std::tolower(c)); });
    }
  }
  SUBCASE("folded and padded") {
    for (auto& f : fields) {
      if (f.starts_with("X-Sqlpost-Sender:")) f = "X-Sqlpost-Sender:\r\n \t siteA  \r\n";
    }
  }
  SUBCASE("extra foreign headers from mail servers") {
    fields.insert(fields.begin(), "Received: from mx.example.com\r\n\tby mx2; Mon, 1 Jan 2024\r\n");
    fields.insert(fields.begin(), "Return-Path: <a@example.com>\r\n");
  }
  std::string mail = join(fields, body);
  SUBCASE("LF only") {
    std::string lf;
    for (char c : mail) {
      if (c != '\r') lf.push_back(c);
    }
    mail = lf;
  }
  auto part = open_part(mail, test_key(1), "siteB");
  REQUIRE_MESSAGE(part.ok(), part.error().message);
  std::vector<OpenedPart> parts;
  parts.push_back(std::move(part).value());
  auto back = reassemble(std::move(parts));
  REQUIRE(back.ok());
  CHECK(*back == payload);
}

TEST_CASE("duplicate or missing X-Sqlpost headers are rejected") {
  const auto mails = encode(text_payload("dup"));
  const std::string& m = mails.front();
  CHECK(open_error(replace_once(m, "X-Sqlpost-Sequence: 5\r\n",
                                "X-Sqlpost-Sequence: 5\r\nX-Sqlpost-Sequence: 5\r\n")) ==
        Errc::kCorruption);
  CHECK(open_error(replace_once(m, "X-Sqlpost-Part: 1\r\n",
                                "X-Sqlpost-Part: 1\r\nx-sqlpost-part: 2\r\n")) ==
        Errc::kCorruption);
  CHECK(peek_part(replace_once(m, "X-Sqlpost-Receiver: siteB\r\n", "")).error().code ==
        Errc::kCorruption);
  CHECK(open_error(replace_once(m, "Content-Type: multipart/mixed",
                                "Content-Type: text/plain\r\nContent-Type: multipart/mixed")) ==
        Errc::kCorruption);
}

TEST_CASE("limits: oversize mail, too many headers, long header") {
  std::string big(kMaxMailBytes + 1, 'x');
  CHECK(peek_part(big).error().code == Errc::kLimitExceeded);
  CHECK(open_error(big) == Errc::kLimitExceeded);
  std::string many;
  for (std::size_t i = 0; i <= kMaxHeaders; ++i) many += "X-Filler: " + std::to_string(i) + "\r\n";
  CHECK(peek_part(many + "\r\n").error().code == Errc::kLimitExceeded);
  const std::string long_header = "Subject: " + std::string(kMaxHeaderLineBytes, 'y') + "\r\n\r\n";
  CHECK(peek_part(long_header).error().code == Errc::kLimitExceeded);
  const std::string endless(kMaxHeaderBlockBytes + 10, 'h');
  CHECK(peek_part(endless).error().code == Errc::kLimitExceeded);
  CHECK(peek_part("X-Sqlpost-Parts: 4097\r\n\r\n").error().code == Errc::kCorruption);
}

TEST_CASE("reassemble: missing, duplicate, foreign and resent parts") {
  const Bytes payload = random_payload(50000, 9);
  const auto mails = encode(payload, 8192);
  REQUIRE(mails.size() >= 4);
  SUBCASE("missing part") {
    auto parts = open_all(mails);
    parts.erase(parts.begin() + 2);
    CHECK(reassemble(std::move(parts)).error().code == Errc::kNotFound);
    auto last_missing = open_all(mails);
    last_missing.pop_back();
    CHECK(reassemble(std::move(last_missing)).error().code == Errc::kNotFound);
  }
  SUBCASE("duplicate part") {
    auto parts = open_all(mails);
    parts.push_back(parts[1]);
    CHECK(reassemble(std::move(parts)).error().code == Errc::kInvalidArgument);
  }
  SUBCASE("part of another message") {
    auto parts = open_all(mails);
    const auto other = encode(random_payload(50000, 10), 8192);
    parts[0] = open_all(other)[0];
    CHECK(reassemble(std::move(parts)).error().code == Errc::kInvalidArgument);
  }
  SUBCASE("empty set") { CHECK(reassemble({}).error().code == Errc::kInvalidArgument); }
  SUBCASE("parts of a resend mix with the first sending") {
    auto first = open_all(mails);
    auto second = open_all(encode(payload, 8192));
    for (std::size_t i = 0; i < first.size(); i += 2) first[i] = second[i];
    auto back = reassemble(std::move(first));
    REQUIRE(back.ok());
    CHECK(*back == payload);
  }
  SUBCASE("resend split differently is detected") {
    auto first = open_all(mails);
    auto second = open_all(encode(payload, 9000));
    if (second.size() == first.size()) {
      first[1] = second[1];
      CHECK(reassemble(std::move(first)).error().code == Errc::kCorruption);
    }
  }
}

TEST_CASE("zstd bomb: decompressed size is bounded") {
  const Bytes zeros(std::size_t{64} << 20, 0);
  const auto mails = encode(zeros);
  CHECK(mails.size() == 1);
  CHECK(reassemble(open_all(mails), std::size_t{1} << 20).error().code == Errc::kLimitExceeded);
  const Bytes exact(std::size_t{1} << 20, 0);
  CHECK(reassemble(open_all(encode(exact)), std::size_t{1} << 20).ok());
  CHECK(reassemble(open_all(encode(exact)), (std::size_t{1} << 20) - 1).error().code ==
        Errc::kLimitExceeded);
}

TEST_CASE("encode rejects bad arguments") {
  const Bytes p = text_payload("x");
  const Key k = test_key(1);
  auto code = [&](const MessageHeader& h, std::string_view from, std::size_t max) {
    auto r = encode_message(h, from, "b@x", p, k, max);
    REQUIRE_FALSE(r.ok());
    return r.error().code;
  };
  CHECK(code({"", "B", 1}, "a@x", 100000) == Errc::kInvalidArgument);
  CHECK(code({"A/B", "B", 1}, "a@x", 100000) == Errc::kInvalidArgument);
  CHECK(code({std::string(65, 'a'), "B", 1}, "a@x", 100000) == Errc::kInvalidArgument);
  CHECK(code({"A", "B", 1}, "a@x", kMinMaxMessageBytes - 1) == Errc::kInvalidArgument);
  CHECK(code({"A", "B", 1}, "a@x\r\nBcc: evil@x", 100000) == Errc::kInvalidArgument);
  CHECK(code({"A", "B", 1}, "", 100000) == Errc::kInvalidArgument);
  auto too_many = encode_message(header_ab(), "a@x", "b@x", random_payload(12 << 20, 1), k,
                                 kMinMaxMessageBytes);
  CHECK(too_many.error().code == Errc::kLimitExceeded);
}

TEST_CASE("keys: generation and text forms") {
  auto k1 = generate_key();
  auto k2 = generate_key();
  REQUIRE(k1.ok());
  REQUIRE(k2.ok());
  CHECK_FALSE(*k1 == *k2);
  const std::string hex = key_to_hex(*k1);
  CHECK(hex.size() == 64);
  auto from_hex = key_from_hex(hex);
  REQUIRE(from_hex.ok());
  CHECK(*from_hex == *k1);
  const std::string b64 = key_to_base64(*k1);
  CHECK(b64.size() == 44);
  auto from_b64 = key_from_base64(b64);
  REQUIRE(from_b64.ok());
  CHECK(*from_b64 == *k1);
  CHECK(key_from_hex(hex.substr(1)).error().code == Errc::kInvalidArgument);
  CHECK(key_from_hex(std::string(63, '0') + "g").error().code == Errc::kInvalidArgument);
  CHECK(key_from_base64("AAAA").error().code == Errc::kInvalidArgument);
  CHECK(key_from_base64(b64.substr(0, 43) + "*").error().code == Errc::kInvalidArgument);
}

TEST_CASE("sequence 0 (ack-only control message) round-trips") {
  const Bytes payload = text_payload("ack 41");
  const auto mails = encode(payload, kDefaultMaxMessageBytes, header_ab(0));
  REQUIRE(mails.size() == 1);
  CHECK(mails.front().find("\r\nX-Sqlpost-Sequence: 0\r\n") != std::string::npos);
  CHECK(peek_part(mails.front())->sequence == 0);
  const auto parts = open_all(mails);
  CHECK(parts.front().header.sequence == 0);
  CHECK(decode(mails) == payload);
}

// ---- streaming (transport/message_stream.h)

namespace {

// Supplies the given opened parts in the given order.
PartSupplier supply(std::vector<OpenedPart> parts) {
  auto queue = std::make_shared<std::vector<OpenedPart>>(std::move(parts));
  auto next = std::make_shared<std::size_t>(0);
  return [queue, next]() -> Result<std::optional<OpenedPart>> {
    if (*next == queue->size()) {
      return std::optional<OpenedPart>{};
    }
    return std::optional<OpenedPart>{(*queue)[(*next)++]};
  };
}

Result<Bytes> drain(ByteSource& source, std::size_t chunk) {
  Bytes out;
  Bytes buffer(chunk);
  for (;;) {
    SQLPOST_TRY_ASSIGN(const std::size_t n, source.read(buffer));
    if (n == 0) {
      return out;
    }
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

// The e-mails of `payload` built the streaming way (what prepare does).
std::vector<std::string> encode_streaming(const Bytes& payload, std::size_t max) {
  SpanSource measured(payload);
  auto message = measure_compressed(measured);
  REQUIRE(message.ok());
  SpanSource again(payload);
  CompressingSource compressed(again);
  std::vector<std::string> mails;
  auto parts =
      encode_parts(header_ab(), "a@example.com", "b@example.com", *message, compressed, test_key(1),
                   max, [&](std::uint32_t part, std::uint32_t count, std::string mail) {
                     CHECK(part == mails.size() + 1);
                     CHECK(count >= part);
                     mails.push_back(std::move(mail));
                     return success();
                   });
  REQUIRE(parts.ok());
  CHECK(parts.value() == mails.size());
  CHECK(compressed.read_so_far().digest == message->digest);
  return mails;
}

}  // namespace

TEST_CASE("measuring a message keeps C only up to the bound, the same bytes as compressing again") {
  const Bytes payload = random_payload(300'000, 9);
  SpanSource once(payload);
  auto whole = measure_compressed(once, std::size_t{1} << 20);
  REQUIRE(whole.ok());
  REQUIRE(whole->kept.has_value());
  SpanSource again(payload);
  CompressingSource compressed(again);
  auto expected = drain(compressed, 4096);
  REQUIRE(expected.ok());
  CHECK(*whole->kept == expected.value());
  CHECK(whole->message.size == expected->size());
  CHECK(whole->message.digest == compressed.read_so_far().digest);
  // Exactly |C| is kept; one byte less and nothing is.
  SpanSource at_bound(payload);
  auto fits = measure_compressed(at_bound, expected->size());
  REQUIRE(fits.ok());
  CHECK(fits->kept.has_value());
  SpanSource over(payload);
  auto dropped = measure_compressed(over, expected->size() - 1);
  REQUIRE(dropped.ok());
  CHECK_FALSE(dropped->kept.has_value());
  CHECK(dropped->message.digest == whole->message.digest);
  // Parts sealed from the kept bytes read back as the payload.
  SpanSource kept(*whole->kept);
  std::vector<std::string> mails;
  auto parts =
      encode_parts(header_ab(), "a@example.com", "b@example.com", whole->message, kept, test_key(1),
                   20'000, [&](std::uint32_t, std::uint32_t, std::string mail) {
                     mails.push_back(std::move(mail));
                     return success();
                   });
  REQUIRE(parts.ok());
  auto read_back = reassemble(open_all(mails));
  REQUIRE(read_back.ok());
  CHECK(read_back.value() == payload);
}

TEST_CASE("a message streams part by part: built from a source, read back in any chunk size") {
  const Bytes payload = random_payload(300'000, 7);
  const Bytes text(2'000'000, 'x');  // compressible: fewer parts than bytes suggest
  for (const Bytes* p : {&payload, &text}) {
    const auto mails = encode_streaming(*p, 20'000);
    CHECK(mails.size() > (p == &payload ? 10U : 0U));
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20}) {
      PayloadStream stream(supply(open_all(mails)), {std::size_t{64} << 20, 256});
      auto out = drain(stream, chunk);
      REQUIRE(out.ok());
      CHECK(out.value() == *p);
    }
    // The whole-message codec reads what the streaming encoder wrote.
    auto whole = reassemble(open_all(mails));
    REQUIRE(whole.ok());
    CHECK(whole.value() == *p);
  }
}

TEST_CASE("a streamed message with a part missing, out of order, foreign or altered is an error") {
  const Bytes payload = random_payload(100'000, 9);
  const auto mails = encode_streaming(payload, 20'000);
  REQUIRE(mails.size() >= 3);
  const auto error_of = [](std::vector<OpenedPart> parts) {
    PayloadStream stream(supply(std::move(parts)), {std::size_t{64} << 20, 256});
    auto out = drain(stream, 4096);
    REQUIRE_FALSE(out.ok());
    return out.error().code;
  };
  auto parts = open_all(mails);
  auto missing = parts;
  missing.erase(missing.begin() + 1);
  CHECK(error_of(missing) == Errc::kNotFound);
  auto last_missing = parts;
  last_missing.pop_back();
  CHECK(error_of(last_missing) == Errc::kNotFound);
  auto swapped = parts;
  std::swap(swapped[0], swapped[1]);
  CHECK(error_of(swapped) == Errc::kNotFound);
  auto foreign = parts;
  foreign[1] = open_all(encode(random_payload(100'000, 10), 20'000))[1];
  CHECK(error_of(foreign) == Errc::kInvalidArgument);
  auto altered = parts;  // authenticated, but not the slice the digest covers
  altered[1].data[0] ^= 1;
  CHECK(error_of(altered) != Errc::kInternal);
}

TEST_CASE("a streamed zstd bomb stops at max(floor, expansion x |C|)") {
  const Bytes zeros(std::size_t{40} << 20, 0);  // 40 MiB of zeros: a few KiB compressed
  const auto mails = encode_streaming(zeros, kDefaultMaxMessageBytes);
  PayloadStream stream(supply(open_all(mails)), {std::size_t{8} << 20, 256});
  auto out = drain(stream, 1 << 16);
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == Errc::kLimitExceeded);
}
