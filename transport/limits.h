// sqlpost/transport/limits.h — every size and count limit the transport enforces.
//
// Contract: each number read from a mailbox (mail size, header count, line length,
// part count, payload size, name length) is checked against one of these named
// constants before it is used. docs/format.md lists them with their meaning.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sqlpost::transport {

// The format version written by this build; older/newer versions are rejected.
inline constexpr std::uint32_t kFormatVersion = 1;

// A site name: 1..kMaxSiteNameBytes of [A-Za-z0-9._-].
inline constexpr std::size_t kMaxSiteNameBytes = 64;
// An e-mail address given by the caller for From/To (RFC 5321 path limit).
inline constexpr std::size_t kMaxAddressBytes = 254;

// A fetched mail (one part) is never read beyond this size.
inline constexpr std::size_t kMaxMailBytes = std::size_t{16} << 20;  // 16 MiB
// One message is split into at most this many parts (e-mails).
inline constexpr std::uint32_t kMaxParts = 4096;
// The decompressed payload of one message is never larger than this.
inline constexpr std::size_t kMaxPayloadBytes = std::size_t{512} << 20;  // 512 MiB

// The caller-chosen maximum size of one e-mail.
inline constexpr std::size_t kDefaultMaxMessageBytes = 1'000'000;
inline constexpr std::size_t kMinMaxMessageBytes = 4096;

// Header parsing of an untrusted mail (the top-level block and each MIME part).
inline constexpr std::size_t kMaxHeaderLineBytes = 8192;  // one logical (unfolded) header
inline constexpr std::size_t kMaxHeaders = 512;           // header fields in one block
inline constexpr std::size_t kMaxHeaderBlockBytes = std::size_t{256} * 1024;
// MIME body parts in the top-level multipart/mixed body.
inline constexpr std::size_t kMaxMimeParts = 16;
// A MIME boundary (RFC 2046 allows 70).
inline constexpr std::size_t kMaxBoundaryBytes = 70;

}  // namespace sqlpost::transport
