// sqlpost/common/byte_stream.h — the seam through which a message streams between
// modules: transport/ decompresses, replication/ decodes, neither holds it whole.
//
// Contract: a ByteSource hands out the next bytes of a stream in order; read()
// fills at most out.size() bytes and returns how many, 0 only at the end. A
// ByteSink takes the next bytes of a stream. Both report failures as Result; once
// a read failed, the source stays failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "common/result.h"

namespace sqlpost {

class ByteSource {
 public:
  ByteSource() = default;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  ByteSource(ByteSource&&) = delete;
  ByteSource& operator=(ByteSource&&) = delete;
  virtual ~ByteSource() = default;
  virtual Result<std::size_t> read(std::span<std::uint8_t> out) = 0;
};

// The bytes of a span, as a source.
class SpanSource final : public ByteSource {
 public:
  explicit SpanSource(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  Result<std::size_t> read(std::span<std::uint8_t> out) override;

 private:
  std::span<const std::uint8_t> bytes_;
};

using ByteSink = std::function<Result<>(std::span<const std::uint8_t>)>;

}  // namespace sqlpost
