// sqlpost/transport/message_stream.h — a message of any size, one part at a time.
//
// Contract: the receiving side of the codec without holding a message whole.
// CompressedParts reads the compressed bytes C of one message from its opened
// parts, handed over in part order by a supplier: every part must belong to the
// first one's message, come in order, continue exactly where the previous one
// ended, and at the end the parts must add up to |C| with the SHA-256 the
// envelopes name (else kCorruption; a part missing: kNotFound). PayloadStream
// decompresses them (one zstd frame, the window bound of compress.h) into the
// payload bytes, no more than `max_output` in all (kLimitExceeded). On the
// sending side, MessageCompressor compresses payload bytes into a sink and
// measures what encode_parts() needs to know (|C| and its digest). Memory: one
// part and the zstd buffers.
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

  PartSupplier next_;
  std::optional<OpenedPart> first_;  // the envelope every later part must match
  std::vector<std::uint8_t> data_;   // the current part's slice
  std::size_t pos_ = 0;              // read so far of data_
  std::uint32_t parts_seen_ = 0;
  std::uint64_t consumed_ = 0;  // bytes of C handed out
  crypto::Sha256 sha_;
  bool ended_ = false;
};

class PayloadStream final : public ByteSource {
 public:
  PayloadStream(PartSupplier next, std::uint64_t max_output);
  Result<std::size_t> read(std::span<std::uint8_t> out) override;

 private:
  Result<> refill();
  Result<std::size_t> end_of_frame();

  CompressedParts parts_;
  std::optional<zstd::Decompressor> zstd_;
  std::vector<std::uint8_t> input_;
  std::span<const std::uint8_t> pending_;
  std::uint64_t max_output_;
  std::uint64_t produced_ = 0;
  bool input_ended_ = false;
};

class MessageCompressor {
 public:
  static Result<MessageCompressor> create(ByteSink sink);
  Result<> write(std::span<const std::uint8_t> payload) { return zstd_->write(payload); }
  // Ends the frame; then message() is |C| and its digest.
  Result<CompressedMessage> finish();

 private:
  struct Measured {
    ByteSink sink;
    crypto::Sha256 sha;
    std::uint64_t size = 0;
  };
  explicit MessageCompressor(std::unique_ptr<Measured> measured) : measured_(std::move(measured)) {}

  std::unique_ptr<Measured> measured_;  // stable address: the compressor's sink points here
  std::optional<zstd::Compressor> zstd_;
};

}  // namespace sqlpost::transport
