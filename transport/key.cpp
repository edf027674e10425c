#include "transport/key.h"

#include <openssl/crypto.h>

#include "transport/crypto.h"

namespace sqlpost::transport {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Key::~Key() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

bool operator==(const Key& a, const Key& b) {
  return CRYPTO_memcmp(a.bytes_.data(), b.bytes_.data(), Key::kBytes) == 0;
}

Result<Key> generate_key() {
  Key::Bytes bytes{};
  SQLPOST_TRY(crypto::random_bytes(bytes));
  Key key(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

std::string key_to_hex(const Key& key) {
  std::string out;
  out.reserve(Key::kBytes * 2);
  for (const std::uint8_t b : key.bytes()) {
    out.push_back(kHexDigits[b >> 4U]);
    out.push_back(kHexDigits[b & 0x0FU]);
  }
  return out;
}

Result<Key> key_from_hex(std::string_view text) {
  if (text.size() != Key::kBytes * 2) {
    return make_error(Errc::kInvalidArgument, "a key in hex must have exactly 64 hex digits");
  }
  Key::Bytes bytes{};
  for (std::size_t i = 0; i < Key::kBytes; ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error(Errc::kInvalidArgument, "key contains a non-hex digit");
    bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return Key(bytes);
}

std::string key_to_base64(const Key& key) { return crypto::base64_encode(key.bytes()); }

Result<Key> key_from_base64(std::string_view text) {
  auto decoded = crypto::base64_decode(text);
  if (!decoded.ok() || decoded->size() != Key::kBytes) {
    return make_error(Errc::kInvalidArgument, "a key in base64 must decode to exactly 32 bytes");
  }
  Key::Bytes bytes{};
  std::copy(decoded->begin(), decoded->end(), bytes.begin());
  OPENSSL_cleanse(decoded->data(), decoded->size());
  return Key(bytes);
}

}  // namespace sqlpost::transport
