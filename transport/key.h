// sqlpost/transport/key.h — the 32-byte secret shared by one pair of sites.
//
// Contract: a Key holds exactly 32 random bytes (AES-256-GCM key). It is wiped
// (OPENSSL_cleanse) when destroyed. Text forms for storage: 64 lower-case hex
// digits, or standard base64 (44 chars with padding). Parsing rejects any other
// length or character with Errc::kInvalidArgument.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sqlpost::transport {

class Key {
 public:
  static constexpr std::size_t kBytes = 32;
  using Bytes = std::array<std::uint8_t, kBytes>;

  Key() = default;  // all zero: a valid but useless key (for tests and placeholders)
  explicit Key(const Bytes& bytes) : bytes_(bytes) {}
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  Key(Key&&) = default;
  Key& operator=(Key&&) = default;
  ~Key();

  [[nodiscard]] const Bytes& bytes() const { return bytes_; }
  friend bool operator==(const Key& a, const Key& b);

 private:
  Bytes bytes_{};
};

// A fresh key from the OpenSSL CSPRNG (RAND_bytes). kInternal if the RNG fails.
Result<Key> generate_key();

std::string key_to_hex(const Key& key);
Result<Key> key_from_hex(std::string_view text);
std::string key_to_base64(const Key& key);
Result<Key> key_from_base64(std::string_view text);

}  // namespace sqlpost::transport
