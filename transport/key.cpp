#include "transport/key.h"

#include <openssl/crypto.h>

#include "common/hex.h"
#include "transport/crypto.h"

namespace sqlpost::transport {

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

std::string key_to_hex(const Key& key) { return hex_encode(key.bytes()); }

Result<Key> key_from_hex(std::string_view text) {
  if (text.size() != Key::kBytes * 2) {
    return make_error(Errc::kInvalidArgument, "a key in hex must have exactly 64 hex digits");
  }
  Key::Bytes bytes{};
  if (!hex_decode(text, bytes)) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return make_error(Errc::kInvalidArgument, "key contains a non-hex digit");
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
