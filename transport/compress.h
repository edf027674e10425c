// sqlpost/transport/compress.h — zstd compression with bounded decompression
// (internal to transport/).
//
// Contract: compress() produces one zstd frame. decompress() never produces more
// than `max_output` bytes (kLimitExceeded otherwise, before allocating more), and
// rejects truncated, trailing or malformed input with kCorruption. Each ZSTD
// context is owned by a unique_ptr with its free function; a Compressor's context,
// once done, is reset and kept for the thread's next Compressor. Compressor and
// Decompressor do the same piece by piece, so that a message of any size streams
// through a bounded amount of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/byte_stream.h"

#include "common/result.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace sqlpost::transport::zstd {

inline constexpr int kCompressionLevel = 3;

Result<std::vector<std::uint8_t>> compress(std::span<const std::uint8_t> input,
                                           int level = kCompressionLevel);
Result<std::vector<std::uint8_t>> decompress(std::span<const std::uint8_t> input,
                                             std::size_t max_output);

// One zstd frame written piece by piece; the compressed bytes go to `sink` as they
// are produced (at most kStreamChunk at a time).
class Compressor {
 public:
  static Result<Compressor> create(ByteSink sink, int level = kCompressionLevel);
  Result<> write(std::span<const std::uint8_t> input);
  Result<> finish();  // ends the frame; nothing may be written after

 private:
  struct CtxFree {
    void operator()(ZSTD_CCtx_s* ctx) const;
  };
  Compressor(std::unique_ptr<ZSTD_CCtx_s, CtxFree> ctx, ByteSink sink);
  Result<> run(std::span<const std::uint8_t> input, bool end);

  std::unique_ptr<ZSTD_CCtx_s, CtxFree> ctx_;
  ByteSink sink_;
  std::size_t out_size_;
  // Not cleared: zstd writes each byte before it is read (a vector would clear it).
  std::unique_ptr<std::uint8_t[]> out_;  // NOLINT(modernize-avoid-c-arrays)
};

// One zstd frame read piece by piece, with the same window bound as decompress().
class Decompressor {
 public:
  static Result<Decompressor> create();
  // Decompresses from the front of `input` (consumed bytes are dropped from it)
  // into `out`; returns how many bytes were written to `out`.
  Result<std::size_t> step(std::span<const std::uint8_t>& input, std::span<std::uint8_t> out);
  // The frame ended exactly (after the last step).
  [[nodiscard]] bool frame_done() const { return done_; }

 private:
  struct CtxFree {
    void operator()(ZSTD_DCtx_s* ctx) const;
  };
  explicit Decompressor(std::unique_ptr<ZSTD_DCtx_s, CtxFree> ctx) : ctx_(std::move(ctx)) {}

  std::unique_ptr<ZSTD_DCtx_s, CtxFree> ctx_;
  bool done_ = false;
};

inline constexpr std::size_t kStreamChunk = std::size_t{1} << 17;  // 128 KiB

}  // namespace sqlpost::transport::zstd
