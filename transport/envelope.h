// sqlpost/transport/envelope.h — the binary envelope at the head of each
// attachment, which is also the AEAD associated data (internal to transport/).
//
// Contract: serialize() is canonical (one byte string per envelope); parse() reads
// exactly one envelope from untrusted bytes, bounded, returning kCorruption for
// bad magic or lengths, kUnsupported for an unknown version or AEAD id.
// Layout: docs/format.md, "Attachment bytes".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "transport/codec.h"

namespace sqlpost::transport::envelope {

inline constexpr std::array<std::uint8_t, 4> kMagic = {'S', 'Q', 'P', 'T'};
inline constexpr std::uint8_t kAeadAes256Gcm = 1;

struct Envelope {
  PartHeader header;
  std::uint64_t compressed_size = 0;
  std::uint64_t offset = 0;
  crypto::Digest digest{};
};

// The serialized size for the given site-name lengths.
std::size_t size_for(std::size_t sender_bytes, std::size_t receiver_bytes);

std::vector<std::uint8_t> serialize(const Envelope& env);

struct Parsed {
  Envelope env;
  std::size_t size = 0;  // bytes the envelope occupies at the start of the input
};
Result<Parsed> parse(std::span<const std::uint8_t> bytes);

}  // namespace sqlpost::transport::envelope
