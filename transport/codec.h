// sqlpost/transport/codec.h — the message codec: payload bytes <-> e-mails.
//
// Contract (format version 1, byte by byte in docs/format.md):
//  * encode_message: zstd-compresses the opaque payload, splits the compressed
//    bytes into k <= kMaxParts parts so that each e-mail is <= max_message_bytes,
//    seals each part with AES-256-GCM (fresh random 96-bit nonce; associated data =
//    the part's envelope: version, sender, receiver, sequence, part i, count k,
//    compressed length, offset, SHA-256 of the compressed bytes) and wraps it as a
//    7-bit MIME e-mail with CRLF line ends and lines <= 76 characters.
//  * Reading mail from a mailbox is hostile input: looks_like_sqlpost() decides
//    whether a mail is ours at all (foreign mail must be left alone), peek_part()
//    reads the unauthenticated X-Sqlpost headers (to choose the partner key),
//    open_part() authenticates and decrypts one part, reassemble() checks a
//    complete set of parts and decompresses with a bounded output size.
//  * Errors: kLimitExceeded (a named limit in transport/limits.h), kUnsupported
//    (unknown format version), kInvalidArgument (bad caller input, or a part
//    addressed to another site), kCorruption (malformed or inconsistent mail),
//    kAuthentication (tag does not verify: wrong key or altered mail), kNotFound
//    (reassemble: a part is missing). Nothing here throws or aborts on bad input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_stream.h"
#include "common/result.h"
#include "transport/crypto.h"
#include "transport/key.h"
#include "transport/limits.h"

namespace sqlpost::transport {

// Who sends which message. Site names: 1..kMaxSiteNameBytes of [A-Za-z0-9._-].
struct MessageHeader {
  std::string sender;
  std::string receiver;
  std::uint64_t sequence = 0;  // >= 1 per ordered (sender, receiver) pair; 0: ack-only control
};

// The unauthenticated X-Sqlpost headers of one e-mail (syntax-checked only).
struct PartHeader {
  std::uint32_t version = kFormatVersion;
  std::string sender;
  std::string receiver;
  std::uint64_t sequence = 0;
  std::uint32_t part = 0;   // 1-based
  std::uint32_t parts = 0;  // count, 1..kMaxParts
};

// One authenticated, decrypted part. Every field was covered by the AEAD tag.
struct OpenedPart {
  PartHeader header;
  std::uint64_t compressed_size = 0;  // of the whole message
  std::uint64_t offset = 0;           // of this part within the compressed bytes
  crypto::Digest digest{};            // SHA-256 of the whole compressed message
  std::vector<std::uint8_t> data;     // this part's slice of the compressed bytes
};

bool valid_site_name(std::string_view name);

// The e-mails (one per part, in part order) carrying `payload`.
// Sequence 0 is an ack-only control message (not part of the ordered stream).
// kInvalidArgument: bad site name, address with CR/LF/8-bit or too long,
// max_message_bytes < kMinMaxMessageBytes. kLimitExceeded: payload > kMaxPayloadBytes
// or more than kMaxParts parts needed.
Result<std::vector<std::string>> encode_message(
    const MessageHeader& header, std::string_view from_address, std::string_view to_address,
    std::span<const std::uint8_t> payload, const Key& key,
    std::size_t max_message_bytes = kDefaultMaxMessageBytes);

// A compressed message, as the envelope of each of its parts names it.
struct CompressedMessage {
  std::uint64_t size = 0;   // |C|
  crypto::Digest digest{};  // SHA-256 of C
};

// Receives each e-mail of a message as it is made: part i of k.
using PartSink = std::function<Result<>(std::uint32_t part, std::uint32_t parts, std::string mail)>;

// The e-mails of a message whose compressed bytes C (exactly message.size of them,
// with SHA-256 message.digest) are read from `compressed`, one part at a time:
// only one part is in memory at once. Returns the part count. Same errors as
// encode_message, without its payload size limit.
Result<std::uint32_t> encode_parts(const MessageHeader& header, std::string_view from_address,
                                   std::string_view to_address, const CompressedMessage& message,
                                   ByteSource& compressed, const Key& key,
                                   std::size_t max_message_bytes, const PartSink& sink);

// The same mail with a new Message-ID, <sqlpost.NONCE.TAG@sqlpost> (16 hex each):
// every send of a part gets its own, so servers that drop a Message-ID they
// delivered before still deliver a resend. The part's identity stays in the
// X-Sqlpost headers and the sealed envelope. TAG is an HMAC-SHA-256 under the pair
// key of NONCE and the part's identity, so that a bounce returning any send of the
// part can be told from a forgery (message_id_is_ours). kCorruption: the mail has
// no Message-ID line or no X-Sqlpost headers.
Result<std::string> with_fresh_message_id(std::string_view mail, const Key& key);
bool message_id_is_ours(std::string_view message_id, const PartHeader& part, const Key& key);

// Cheap: does the header block contain any X-Sqlpost-* field? Never fails.
bool looks_like_sqlpost(std::string_view mail);

// A plain-text mail to a person (an alert notice): From, To, Subject, Date,
// Message-ID, MIME-Version and Content-Type text/plain; UTF-8, CRLF line ends, no
// X-Sqlpost headers. kInvalidArgument for an address or subject with CR/LF/NUL.
Result<std::string> compose_notice(std::string_view from, std::string_view to,
                                   std::string_view subject, std::string_view body);

// Parses and syntax-checks the X-Sqlpost headers. Not authenticated.
Result<PartHeader> peek_part(std::string_view mail);

// Authenticates and decrypts one part addressed to `expected_receiver`.
Result<OpenedPart> open_part(std::string_view mail, const Key& key,
                             std::string_view expected_receiver);

// Is `b` a part of the same message (same encoding) as `a`?
bool same_message(const OpenedPart& a, const OpenedPart& b);

// All parts of one message, any order, each exactly once -> the payload.
// kInvalidArgument: empty, parts of different messages, a duplicate part.
// kNotFound: a part is missing. kCorruption: inconsistent offsets/sizes, digest
// mismatch, malformed zstd data. kLimitExceeded: payload > max_payload_bytes.
Result<std::vector<std::uint8_t>> reassemble(std::vector<OpenedPart> parts,
                                             std::size_t max_payload_bytes = kMaxPayloadBytes);

}  // namespace sqlpost::transport
