#include "transport/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <memory>

namespace sqlpost::transport::crypto {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

Error openssl_failure(const char* what) {
  return make_error(Errc::kInternal, std::string("OpenSSL failure in ") + what);
}

// OpenSSL takes int lengths; every caller stays far below INT_MAX (kMaxMailBytes).
Result<int> int_length(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX)) {
    return make_error(Errc::kLimitExceeded, "buffer too large for OpenSSL");
  }
  return static_cast<int>(n);
}

enum class Direction { kEncrypt = 1, kDecrypt = 0 };

Result<CipherCtx> make_gcm(const Key& key, const Nonce& nonce, Direction dir) {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_failure("EVP_CIPHER_CTX_new");
  const int enc = static_cast<int>(dir);
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, enc) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes),
                          nullptr) != 1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.bytes().data(), nonce.data(), enc) != 1) {
    return openssl_failure("AES-256-GCM init");
  }
  return ctx;
}

Result<> add_ad(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> ad) {
  SQLPOST_TRY_ASSIGN(const int ad_len, int_length(ad.size()));
  int out_len = 0;
  if (EVP_CipherUpdate(ctx, nullptr, &out_len, ad.data(), ad_len) != 1) {
    return openssl_failure("AES-256-GCM associated data");
  }
  return success();
}

// Runs the cipher over `in` into `out` (same size; GCM is a stream mode).
Result<> run_cipher(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> in,
                    std::span<std::uint8_t> out) {
  SQLPOST_TRY_ASSIGN(const int in_len, int_length(in.size()));
  int out_len = 0;
  if (!in.empty() && EVP_CipherUpdate(ctx, out.data(), &out_len, in.data(), in_len) != 1) {
    return openssl_failure("AES-256-GCM update");
  }
  return success();
}

}  // namespace

Result<> random_bytes(std::span<std::uint8_t> out) {
  SQLPOST_TRY_ASSIGN(const int n, int_length(out.size()));
  if (RAND_bytes(out.data(), n) != 1) return openssl_failure("RAND_bytes");
  return success();
}

Result<Bytes> seal(const Key& key, const Nonce& nonce, std::span<const std::uint8_t> ad,
                   std::span<const std::uint8_t> plaintext) {
  SQLPOST_TRY_ASSIGN(CipherCtx ctx, make_gcm(key, nonce, Direction::kEncrypt));
  SQLPOST_TRY(add_ad(ctx.get(), ad));
  Bytes out(plaintext.size() + kTagBytes);
  SQLPOST_TRY(run_cipher(ctx.get(), plaintext, std::span(out).first(plaintext.size())));
  int final_len = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + plaintext.size(), &final_len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          out.data() + plaintext.size()) != 1) {
    return openssl_failure("AES-256-GCM final");
  }
  return out;
}

Result<Bytes> open(const Key& key, const Nonce& nonce, std::span<const std::uint8_t> ad,
                   std::span<const std::uint8_t> sealed) {
  if (sealed.size() < kTagBytes) {
    return make_error(Errc::kCorruption, "ciphertext shorter than the authentication tag");
  }
  const std::size_t text_len = sealed.size() - kTagBytes;
  SQLPOST_TRY_ASSIGN(CipherCtx ctx, make_gcm(key, nonce, Direction::kDecrypt));
  SQLPOST_TRY(add_ad(ctx.get(), ad));
  Bytes out(text_len);
  SQLPOST_TRY(run_cipher(ctx.get(), sealed.first(text_len), out));
  Bytes tag(sealed.begin() + static_cast<std::ptrdiff_t>(text_len), sealed.end());
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1) {
    return openssl_failure("AES-256-GCM set tag");
  }
  int final_len = 0;
  if (EVP_CipherFinal_ex(ctx.get(), out.data() + text_len, &final_len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return make_error(Errc::kAuthentication,
                      "authentication tag does not verify (wrong key, or mail was altered)");
  }
  return out;
}

Digest sha256(std::span<const std::uint8_t> data) {
  Digest digest{};
  SHA256(data.data(), data.size(), digest.data());
  return digest;
}

void Sha256::CtxFree::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

// EVP_DigestInit_ex and EVP_DigestUpdate fail only when memory runs out; SHA-256
// is always there in the default provider.
Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    std::abort();
  }
}

void Sha256::update(std::span<const std::uint8_t> data) {
  if (EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1) {
    std::abort();
  }
}

Digest Sha256::digest() const {
  const std::unique_ptr<EVP_MD_CTX, CtxFree> copy(EVP_MD_CTX_new());
  Digest digest{};
  unsigned int length = 0;
  if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1 ||
      EVP_DigestFinal_ex(copy.get(), digest.data(), &length) != 1) {
    std::abort();
  }
  return digest;
}

Digest hmac_sha256(const Key& key, std::span<const std::uint8_t> data) {
  Digest digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.bytes().data(), static_cast<int>(key.bytes().size()), data.data(),
       data.size(), digest.data(), &length);
  return digest;
}

std::string base64_encode(std::span<const std::uint8_t> data) {
  std::string out;
  std::size_t done = 0;
  constexpr std::size_t kChunk = std::size_t{3} * 1024;  // keeps each EVP call's int length small
  while (done < data.size()) {
    const std::size_t n = std::min(kChunk, data.size() - done);
    std::array<unsigned char, (kChunk / 3) * 4 + 1> buf{};
    const int len = EVP_EncodeBlock(buf.data(), data.data() + done, static_cast<int>(n));
    out.append(reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(len));
    done += n;
  }
  return out;
}

namespace {

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Validates the alphabet and padding; returns the number of '=' pad characters.
Result<std::size_t> check_base64(std::string_view text) {
  if (text.size() % 4 != 0) {
    return make_error(Errc::kCorruption, "base64 length is not a multiple of 4");
  }
  std::size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  for (std::size_t i = 0; i + pad < text.size(); ++i) {
    if (!is_base64_char(text[i])) {
      return make_error(Errc::kCorruption, "invalid character in base64 data");
    }
  }
  return pad;
}

}  // namespace

Result<Bytes> base64_decode(std::string_view text) {
  SQLPOST_TRY_ASSIGN(const std::size_t pad, check_base64(text));
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  constexpr std::size_t kChunk = std::size_t{4} * 1024;  // multiple of 4
  for (std::size_t done = 0; done < text.size(); done += kChunk) {
    const std::string_view piece = text.substr(done, kChunk);
    std::array<unsigned char, kChunk / 4 * 3> buf{};
    const int len =
        EVP_DecodeBlock(buf.data(), reinterpret_cast<const unsigned char*>(piece.data()),
                        static_cast<int>(piece.size()));
    if (len < 0) return make_error(Errc::kCorruption, "malformed base64 data");
    out.insert(out.end(), buf.begin(), buf.begin() + len);
  }
  out.resize(out.size() - pad);  // EVP_DecodeBlock counts padding as zero bytes
  return out;
}

}  // namespace sqlpost::transport::crypto
