// sqlpost/transport/message_stream.h — a message of any size, one part at a time.
//
// Contract: the receiving side of the codec without holding a message whole.
// CompressedParts reads the compressed bytes C of one message from its opened
// parts, handed over in part order by a supplier: every part must belong to the
// first one's message, come in order, continue exactly where the previous one
// ended, and at the end the parts must add up to |C| with the SHA-256 the
// envelopes name (else kCorruption; a part missing: kNotFound). PayloadStream
// decompresses them (one zstd frame, the window bound of compress.h) into the
// payload bytes, no more than max(floor, expansion x |C|) in all (kLimitExceeded).
// On the sending side, CompressingSource turns payload bytes into C as
// encode_parts() reads it, and measure_compressed() finds |C| and its digest
// first (the envelopes name them). Memory: one part and the zstd buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/byte_stream.h"
#include "transport/codec.h"
#include "transport/compress.h"

namespace sqlpost::transport {

// The next opened part of the message, or nullopt when there are no more.
using PartSupplier = std::function<Result<std::optional<OpenedPart>>()>;

class CompressedParts final : public ByteSource {
 public:
  explicit CompressedParts(PartSupplier next) : next_(std::move(next)) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override;

 private:
  Result<bool> load_next_part();
  Result<> check_complete();

 public:
  // |C| as the first part's envelope names it (0 before the first read).
  [[nodiscard]] std::uint64_t compressed_size() const {
    return first_ ? first_->compressed_size : 0;
  }

 private:
  PartSupplier next_;
  std::optional<OpenedPart> first_;  // the envelope every later part must match
  std::vector<std::uint8_t> data_;   // the current part's slice
  std::size_t pos_ = 0;              // read so far of data_
  std::uint32_t parts_seen_ = 0;
  std::uint64_t consumed_ = 0;  // bytes of C handed out
  crypto::Sha256 sha_;
  bool ended_ = false;
};

// How much a message may decompress to: max(floor, expansion x |C|) bytes.
struct OutputLimit {
  std::uint64_t floor = 0;
  std::uint64_t expansion = 0;
};

class PayloadStream final : public ByteSource {
 public:
  PayloadStream(PartSupplier next, OutputLimit limit);
  Result<std::size_t> read(std::span<std::uint8_t> out) override;

 private:
  Result<> refill();
  Result<std::size_t> end_of_frame();

  CompressedParts parts_;
  std::optional<zstd::Decompressor> zstd_;
  std::vector<std::uint8_t> input_;
  std::span<const std::uint8_t> pending_;
  OutputLimit limit_;
  std::uint64_t produced_ = 0;
  bool input_ended_ = false;
};

// A kStreamChunk buffer handed from one user to the next on the same thread: a
// fresh one cost an allocation and 128 KiB of zeroing per message, which a hub
// preparing a message for each of 1,000 partners paid 1,000 times a pass.
class ReusedChunk {
 public:
  ReusedChunk();
  ~ReusedChunk();
  ReusedChunk(const ReusedChunk&) = delete;
  ReusedChunk& operator=(const ReusedChunk&) = delete;
  ReusedChunk(ReusedChunk&&) = delete;
  ReusedChunk& operator=(ReusedChunk&&) = delete;
  [[nodiscard]] std::span<std::uint8_t> bytes() { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

// The compressed bytes C of a payload read from `payload`, produced as they are
// read: the payload is fed to zstd in fixed chunks, so the same payload gives the
// same C however the reader slices it. digest() and size() cover what was read.
class CompressingSource final : public ByteSource {
 public:
  explicit CompressingSource(ByteSource& payload) : payload_(payload) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override;
  [[nodiscard]] CompressedMessage read_so_far() const { return {size_, sha_.digest()}; }

 private:
  Result<> refill();

  ByteSource& payload_;
  std::optional<zstd::Compressor> zstd_;
  ReusedChunk input_;
  std::vector<std::uint8_t> output_;
  std::size_t output_pos_ = 0;
  bool finished_ = false;
  crypto::Sha256 sha_;
  std::uint64_t size_ = 0;
};

// |C| and its digest, by compressing the payload once and keeping nothing.
Result<CompressedMessage> measure_compressed(ByteSource& payload);

// A message measured, with C itself when it was no more than the bound asked for.
struct MeasuredMessage {
  CompressedMessage message;
  std::optional<std::vector<std::uint8_t>> kept;  // C, when |C| <= keep_up_to
};

// |C| and its digest, compressing the payload once; C is kept when |C| <= keep_up_to
// (at most keep_up_to + one zstd chunk in memory), so that a small message is encoded
// from the kept bytes instead of being compressed a second time. A bigger C is
// dropped as soon as it passes the bound, and the caller compresses again.
Result<MeasuredMessage> measure_compressed(ByteSource& payload, std::size_t keep_up_to);

}  // namespace sqlpost::transport
