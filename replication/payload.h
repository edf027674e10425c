// sqlpost/replication/payload.h — the content of one message, as CBOR.
//
// Contract: a Payload is what one site tells one partner in one message: the
// acknowledgement of the partner's stream, an optional resend request, and
// whole epochs of row changes. encode_payload() writes CBOR (through
// nlohmann); decode_payload() parses untrusted bytes (already authenticated by
// the transport, still bounded): nesting depth, counts and sizes are checked
// against the named limits below and every structural problem is an exact
// Errc::kCorruption error. Values keep their exact SQLite storage class: TEXT
// travels as a CBOR text string of raw bytes (invalid UTF-8 kept), BLOB as a
// CBOR byte string. Layout in docs/format.md ("Payload").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "schema/capture.h"
#include "schema/value.h"

namespace sqlpost {

inline constexpr std::uint32_t kPayloadVersion = 1;
// Written only when a payload carries passthrough SQL, so that an older sqlpost
// stops at exactly those messages ("not supported") instead of misreading them.
inline constexpr std::uint32_t kPayloadVersionWithPassthrough = 2;
inline constexpr std::size_t kMaxPassthroughBytes = std::size_t{1024} * 1024;
// Written only when a payload carries an article record (a live publication
// change, docs/protocol.md), so an older sqlpost stops at exactly those messages.
inline constexpr std::uint32_t kPayloadVersionWithArticles = 3;
inline constexpr std::size_t kMaxArticleDefinitionBytes = std::size_t{1024} * 1024;
// The streamed layout (replication/payload_stream.h): what this sqlpost writes.
// Versions 1-3 (one CBOR document) are still read.
inline constexpr std::uint32_t kPayloadVersionStreamed = 4;
inline constexpr std::size_t kMaxArticleNameBytes = 1024;  // publication and table names
inline constexpr std::size_t kKeyIdBytes = 8;  // the id naming the key an offer replaces
inline constexpr std::size_t kMaxPayloadDepth = 8;
inline constexpr std::size_t kMaxPayloadTables = 10000;
inline constexpr std::size_t kMaxPayloadColumns = 2000;  // SQLite's default column limit
inline constexpr std::size_t kMessageDigestBytes = 16;   // a message's identity on the wire

// Decoding is bounded in two passes (docs/security.md, "Limits"): a counting pass
// over the CBOR that builds nothing checks every count, length and nesting level
// and estimates the memory the decoded message will take; only then is the
// document built. The estimate is bounded by the message's budget: at least
// kDecodeFloorBytes, at most kMaxDecodeExpansion times its compressed size, and
// never more than transport::kMaxPayloadBytes — so a small message can never
// decode into something big, whatever it declares.
// A streamed message (version 4) costs a batch of memory whatever its size, so this
// bounds work, not memory; versions 1-3 are still bounded by the decode budget.
inline constexpr std::size_t kDefaultMaxChanges = 50'000'000;
inline constexpr std::size_t kDefaultMaxValueBytes = std::size_t{64} << 20;  // 64 MiB
inline constexpr std::size_t kDecodeFloorBytes = std::size_t{32} << 20;      // 32 MiB
inline constexpr std::size_t kMaxDecodeExpansion = 256;
// The most memory one message may take to decode, whatever its size (config
// limits.max_decode_bytes). Honest messages cost about 600 bytes per change of a
// 5-column row, so the default takes the default limits.max_changes (1,000,000)
// with room; 512 MiB (kMaxPayloadBytes, the earlier cap) set aside a legitimate
// one-million-row transaction.
inline constexpr std::size_t kDefaultMaxDecodeBytes = std::size_t{2} << 30;  // 2 GiB

struct DecodeLimits {
  std::size_t max_changes = kDefaultMaxChanges;           // config limits.max_changes
  std::size_t max_value_bytes = kDefaultMaxValueBytes;    // config limits.max_value_bytes
  std::size_t max_decode_bytes = kDefaultMaxDecodeBytes;  // config limits.max_decode_bytes
  std::size_t memory_budget = SIZE_MAX;                   // see decode_budget()
};

// The decoding memory allowed for a message that arrived as `compressed_bytes` of
// compressed payload: max(kDecodeFloorBytes, kMaxDecodeExpansion x compressed), at
// most `max_decode_bytes`.
std::size_t decode_budget(std::size_t compressed_bytes,
                          std::size_t max_decode_bytes = kDefaultMaxDecodeBytes);

enum class PayloadKind { kData, kAckOnly };

struct TableBlock {
  std::string table;
  std::vector<std::string> columns;  // key columns first
  std::size_t key_count = 0;
  bool operator==(const TableBlock&) const = default;
};

// Passthrough: key = [sql], new_values = [target]. Article added: key =
// [publication, table, definition JSON], new_values = [target]; article removed:
// key = [publication, table], new_values = [target] (target: a site or NULL).
struct WireChange {
  std::uint32_t table = 0;  // index into Payload::tables
  ChangeOp op = ChangeOp::kInsert;
  Row key;                             // key values
  std::vector<std::uint32_t> columns;  // non-key column indexes carried (update: changed ones)
  Row new_values;                      // parallel to columns (insert, update)
  Row old_values;                      // parallel to columns (update, delete)
  bool operator==(const WireChange&) const = default;
};

struct EpochBlock {
  std::int64_t epoch = 0;
  std::vector<WireChange> changes;
  bool operator==(const EpochBlock&) const = default;
};

// A site's health as it tells its parent in every message, followed by the records
// its own children told it (docs/format.md, "Health"). Informational only: shown by
// the parent's status, never acted on.
inline constexpr std::size_t kMaxHealthRecords = 10000;
inline constexpr std::size_t kMaxHealthText = 1000;  // bytes of any one text field
inline constexpr std::size_t kMaxHealthHalted = 100;

struct SiteHealth {
  std::string site;
  std::string via;  // "" for the sender itself; else the child it came through
  std::string version;
  std::int64_t reported_at = 0;    // the site's clock, seconds
  std::int64_t conflicts = 0;      // recorded in sqlpost_conflicts
  std::int64_t rejected = 0;       // mail kept in sqlpost_rejected
  std::int64_t outbox_oldest = 0;  // created_at of its oldest unacknowledged part; 0: none
  std::vector<std::pair<std::string, std::string>> halted;  // stopped streams: partner, why
  bool operator==(const SiteHealth&) const = default;
};

// A key-rotation record ("y"; replication/rekey.h). It names the pair it is for
// (sender first), so a site can refuse one about a pair the message is not from.
// kOffer carries the new 32-byte key and the id of the key it replaces; kSwitched
// says the sender seals its messages under the key `replaces` names (the new one)
// from this one on.
enum class RekeyStep : std::uint8_t { kOffer = 1, kSwitched = 2 };
struct RekeyRecord {
  RekeyStep step = RekeyStep::kOffer;
  std::string sender;
  std::string receiver;
  std::vector<std::uint8_t> key;       // kOffer: the new key; kSwitched: empty
  std::vector<std::uint8_t> replaces;  // kKeyIdBytes: kOffer, the replaced key; kSwitched, the new
  bool operator==(const RekeyRecord&) const = default;
};

struct Payload {
  PayloadKind kind = PayloadKind::kData;
  std::uint64_t ack = 0;          // highest contiguous sequence applied from the receiver
  std::uint64_t resend_from = 0;  // 0: none; else "please resend from this sequence"
  std::vector<TableBlock> tables;
  std::vector<EpochBlock> epochs;
  std::vector<SiteHealth> health;  // optional ("h"); older versions ignore it
  // Restore detection and recovery (docs/protocol.md, "A site restored from a
  // backup"). Optional on the wire: empty / 0 when the sender is older or does not know.
  std::vector<std::uint8_t> ack_digest;   // identity of message `ack` as applied
  std::vector<std::uint8_t> prev_digest;  // identity of the sender's previous message
  std::uint64_t confirmed = 0;            // highest of the sender's messages acknowledged
  std::uint64_t restored_from = 0;        // restore request: 0 none, else first lost message
  bool reextract = false;                 // the sender cannot regenerate what the receiver lost
  std::optional<RekeyRecord> rekey;       // key rotation ("y"), data messages only
  bool operator==(const Payload&) const = default;

  [[nodiscard]] std::size_t change_count() const;
  [[nodiscard]] bool has_passthrough() const;
  [[nodiscard]] bool has_article_records() const;
};

// The streamed layout, version 4 (payload_stream.h), whole in memory.
std::vector<std::uint8_t> encode_payload(const Payload& payload);
// The layout of versions 1-3, as earlier sqlpost wrote it (one CBOR document;
// kept to test that it is still read), with the version it was written with.
std::uint32_t payload_document_version(const Payload& payload);
std::vector<std::uint8_t> encode_payload_document(const Payload& payload);
// A message's identity: the first kMessageDigestBytes of the SHA-256 of its encoded
// payload. Sender and receiver compute it from the same bytes.
std::vector<std::uint8_t> message_identity(std::span<const std::uint8_t> encoded);
// Either layout. kLimitExceeded when a named limit or the budget is exceeded;
// kCorruption when malformed. Nothing is allocated for a count before it was checked.
Result<Payload> decode_payload(std::span<const std::uint8_t> bytes,
                               const DecodeLimits& limits = {});
Result<Payload> decode_payload_document(std::span<const std::uint8_t> bytes,
                                        const DecodeLimits& limits = {});
// Does the payload use the streamed layout (version 4)? Its first byte says.
bool is_streamed_payload(std::span<const std::uint8_t> bytes);

}  // namespace sqlpost
