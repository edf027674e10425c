// sqlpost/replication/payload_stream.h — the streamed payload layout (version 4):
// a message of any size written and read a record at a time.
//
// Contract (byte by byte in docs/format.md, "Payload, version 4"): the payload is
// a sequence of CBOR byte strings, each holding one CBOR item, a *record*:
//   the head   {"v": 4, "k", "a", "r", and the optional "h", "d", "p", "c", "x", "z"}
//   [0, name, [columns], key_count]          a table; tables are numbered in order
//   [1, epoch]                               the epoch of the changes that follow
//   [2, table, op, key, columns, new, old]   a change (as in versions 1-3)
//   [3, n]                                   the end: n change records came before
// BodyWriter encodes the records after the head into a sink in chunks of about
// kBodyChunkBytes. PayloadReader decodes hostile bytes from a ByteSource: each
// record's length is checked against max_record_bytes() before it is read, and
// each record is decoded with the bounded two passes of payload.h, so memory is
// one record (plus the batch the caller asks for) whatever the message size.
// Errors: kCorruption (malformed, truncated, trailing bytes, a count that does not
// match), kLimitExceeded (limits.max_changes, a record or value too large),
// kUnsupported (a newer payload version), and whatever the source reports.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/byte_stream.h"
#include "replication/payload.h"

namespace sqlpost {

inline constexpr std::size_t kBodyChunkBytes = std::size_t{1} << 20;
// Records per apply batch, at most (a single larger record is one batch).
inline constexpr std::size_t kBatchBytes = std::size_t{16} << 20;

// The largest record accepted: a change carries a key and the old and new values
// of its columns; four values at limits.max_value_bytes and 1 MiB of the rest.
std::size_t max_record_bytes(const DecodeLimits& limits);

std::vector<std::uint8_t> encode_head(const Payload& head);  // version 4
std::vector<std::uint8_t> encode_end(std::uint64_t changes);

class BodyWriter {
 public:
  explicit BodyWriter(ByteSink sink, std::size_t chunk_bytes = kBodyChunkBytes)
      : sink_(std::move(sink)), chunk_bytes_(chunk_bytes) {}
  void table(const TableBlock& t);
  void change(std::int64_t epoch, const WireChange& c);
  // Hands over what is buffered; returns the first failure of the sink, if any
  // (writes after a failure are dropped).
  Result<> finish();
  [[nodiscard]] std::uint64_t changes() const { return changes_; }

 private:
  void append_record(std::vector<std::uint8_t>&& item);
  void flush();

  ByteSink sink_;
  std::size_t chunk_bytes_;
  std::vector<std::uint8_t> buffer_;
  std::vector<std::uint8_t> record_;  // the record being read
  std::uint64_t changes_ = 0;
  std::int64_t epoch_ = 0;
  bool has_epoch_ = false;
  std::optional<Error> failure_;
};

class PayloadReader {
 public:
  PayloadReader(ByteSource& source, const DecodeLimits& limits)
      : source_(source), limits_(limits) {}
  // The head: every field of Payload but tables and epochs. First, once.
  Result<Payload> head();
  // The next changes, at most `max_changes` of them and about `max_bytes` of
  // records (at least one change): batch.tables holds every table so far,
  // batch.epochs the changes. False when the payload ended (its end record
  // checked, nothing after it). The memory a batch takes is estimated and bounded
  // by limits.memory_budget (kLimitExceeded).
  Result<bool> next(Payload& batch, std::size_t max_changes, std::size_t max_bytes = kBatchBytes);

 private:
  Result<bool> read_bytes(std::span<std::uint8_t> out);  // false: clean end before any byte
  Result<bool> read_record(std::vector<std::uint8_t>& record);
  Result<std::uint64_t> record_length(std::uint8_t first);
  Result<bool> take_record(std::vector<std::uint8_t>& bytes, Payload& batch);
  Result<bool> take_change(WireChange&& c, std::size_t record_bytes, Payload& batch);
  Result<> check_end(std::uint64_t declared);

  ByteSource& source_;
  DecodeLimits limits_;
  std::vector<std::uint8_t> buffer_;
  std::vector<std::uint8_t> record_;  // the record being read
  std::size_t pos_ = 0;
  std::vector<TableBlock> tables_;
  std::int64_t epoch_ = 0;
  bool has_epoch_ = false;
  std::uint64_t changes_ = 0;
  bool ended_ = false;
  std::size_t batch_estimate_ = 0;
};

// A whole version-4 payload from memory (control messages, tests).
Result<Payload> decode_streamed_payload(std::span<const std::uint8_t> bytes,
                                        const DecodeLimits& limits);

}  // namespace sqlpost
