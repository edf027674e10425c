// sqlpost/transport/crypto.h — thin RAII wrappers over OpenSSL (internal to transport/).
//
// Contract: AES-256-GCM seal/open with a 96-bit nonce and a 128-bit tag, SHA-256,
// CSPRNG bytes and base64 (OpenSSL EVP_EncodeBlock/EVP_DecodeBlock). Every
// OpenSSL handle is owned by a unique_ptr with its free function. No exceptions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/key.h"

struct evp_md_ctx_st;
using EVP_MD_CTX = evp_md_ctx_st;  // OpenSSL's, declared here as in <openssl/types.h>

namespace sqlpost::transport::crypto {

inline constexpr std::size_t kNonceBytes = 12;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kDigestBytes = 32;

using Nonce = std::array<std::uint8_t, kNonceBytes>;
using Digest = std::array<std::uint8_t, kDigestBytes>;
using Bytes = std::vector<std::uint8_t>;

// Fills `out` from RAND_bytes; kInternal on RNG failure.
Result<> random_bytes(std::span<std::uint8_t> out);

// Returns ciphertext || tag (plaintext.size() + kTagBytes bytes).
Result<Bytes> seal(const Key& key, const Nonce& nonce, std::span<const std::uint8_t> ad,
                   std::span<const std::uint8_t> plaintext);

// `sealed` is ciphertext || tag. kAuthentication if the tag does not verify.
Result<Bytes> open(const Key& key, const Nonce& nonce, std::span<const std::uint8_t> ad,
                   std::span<const std::uint8_t> sealed);

Digest sha256(std::span<const std::uint8_t> data);

// SHA-256 over data given piece by piece (a message streamed part by part).
class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::uint8_t> data);
  [[nodiscard]] Digest digest() const;  // of everything so far; update() may go on

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const;
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};
// HMAC-SHA-256 of `data` under `key`.
Digest hmac_sha256(const Key& key, std::span<const std::uint8_t> data);

// Standard base64 with padding, no line breaks.
std::string base64_encode(std::span<const std::uint8_t> data);
// Strict: only the base64 alphabet, length a multiple of 4, '=' only as final padding.
// kCorruption otherwise.
Result<Bytes> base64_decode(std::string_view text);

}  // namespace sqlpost::transport::crypto
