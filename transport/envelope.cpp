#include "transport/envelope.h"

#include <algorithm>
#include <string>

namespace sqlpost::transport::envelope {
namespace {

// magic, version, aead id, 2 name lengths, sequence, part, parts, size, offset, digest
constexpr std::size_t kFixedBytes = 4 + 1 + 1 + 1 + 1 + 8 + 4 + 4 + 8 + 8 + crypto::kDigestBytes;

template <class Int>
void put_be(std::vector<std::uint8_t>& out, Int value) {
  for (std::size_t i = sizeof(Int); i > 0; --i) {
    out.push_back(static_cast<std::uint8_t>(value >> (8 * (i - 1))));
  }
}

void put_name(std::vector<std::uint8_t>& out, const std::string& name) {
  out.push_back(static_cast<std::uint8_t>(name.size()));
  out.insert(out.end(), name.begin(), name.end());
}

// A bounds-checked cursor over untrusted bytes.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  Result<std::span<const std::uint8_t>> take(std::size_t n) {
    if (bytes_.size() - pos_ < n) {
      return make_error(Errc::kCorruption, "attachment is shorter than its envelope");
    }
    const auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  template <class Int>
  Result<Int> be() {
    SQLPOST_TRY_ASSIGN(const auto raw, take(sizeof(Int)));
    Int value = 0;
    for (const std::uint8_t b : raw) value = static_cast<Int>((value << 8U) | b);
    return value;
  }
  Result<std::string> name() {
    SQLPOST_TRY_ASSIGN(const auto len, be<std::uint8_t>());
    SQLPOST_TRY_ASSIGN(const auto raw, take(len));
    std::string out(raw.begin(), raw.end());
    if (!valid_site_name(out))
      return make_error(Errc::kCorruption, "invalid site name in envelope");
    return out;
  }
  [[nodiscard]] std::size_t pos() const { return pos_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

Result<> read_preamble(Reader& r) {
  SQLPOST_TRY_ASSIGN(const auto magic, r.take(kMagic.size()));
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin())) {
    return make_error(Errc::kCorruption, "attachment does not start with the sqlpost magic");
  }
  SQLPOST_TRY_ASSIGN(const auto version, r.be<std::uint8_t>());
  if (version != kFormatVersion) {
    return make_error(Errc::kUnsupported,
                      "envelope format version " + std::to_string(version) + " is not supported");
  }
  SQLPOST_TRY_ASSIGN(const auto aead, r.be<std::uint8_t>());
  if (aead != kAeadAes256Gcm) {
    return make_error(Errc::kUnsupported,
                      "AEAD algorithm " + std::to_string(aead) + " is not supported");
  }
  return success();
}

Result<> read_counters(Reader& r, Envelope& env) {
  SQLPOST_TRY_ASSIGN(env.header.sequence, r.be<std::uint64_t>());
  SQLPOST_TRY_ASSIGN(env.header.part, r.be<std::uint32_t>());
  SQLPOST_TRY_ASSIGN(env.header.parts, r.be<std::uint32_t>());
  SQLPOST_TRY_ASSIGN(env.compressed_size, r.be<std::uint64_t>());
  SQLPOST_TRY_ASSIGN(env.offset, r.be<std::uint64_t>());
  SQLPOST_TRY_ASSIGN(const auto digest, r.take(crypto::kDigestBytes));
  std::copy(digest.begin(), digest.end(), env.digest.begin());
  const PartHeader& h = env.header;
  if (h.parts == 0 || h.parts > kMaxParts || h.part == 0 || h.part > h.parts ||
      env.offset > env.compressed_size) {
    return make_error(Errc::kCorruption, "envelope numbers are out of range");
  }
  return success();
}

}  // namespace

std::size_t size_for(std::size_t sender_bytes, std::size_t receiver_bytes) {
  return kFixedBytes + sender_bytes + receiver_bytes;
}

std::vector<std::uint8_t> serialize(const Envelope& env) {
  std::vector<std::uint8_t> out(kMagic.begin(), kMagic.end());
  out.reserve(size_for(env.header.sender.size(), env.header.receiver.size()));
  out.push_back(static_cast<std::uint8_t>(kFormatVersion));
  out.push_back(kAeadAes256Gcm);
  put_name(out, env.header.sender);
  put_name(out, env.header.receiver);
  put_be(out, env.header.sequence);
  put_be(out, env.header.part);
  put_be(out, env.header.parts);
  put_be(out, env.compressed_size);
  put_be(out, env.offset);
  out.insert(out.end(), env.digest.begin(), env.digest.end());
  return out;
}

Result<Parsed> parse(std::span<const std::uint8_t> bytes) {
  Reader r(bytes);
  Parsed parsed;
  SQLPOST_TRY(read_preamble(r));
  parsed.env.header.version = kFormatVersion;
  SQLPOST_TRY_ASSIGN(parsed.env.header.sender, r.name());
  SQLPOST_TRY_ASSIGN(parsed.env.header.receiver, r.name());
  SQLPOST_TRY(read_counters(r, parsed.env));
  parsed.size = r.pos();
  return parsed;
}

}  // namespace sqlpost::transport::envelope
