// sqlpost/transport/compress.h — zstd compression with bounded decompression
// (internal to transport/).
//
// Contract: compress() produces one zstd frame. decompress() never produces more
// than `max_output` bytes (kLimitExceeded otherwise, before allocating more), and
// rejects truncated, trailing or malformed input with kCorruption. Each ZSTD
// context is owned by a unique_ptr with its free function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"

namespace sqlpost::transport::zstd {

inline constexpr int kCompressionLevel = 3;

Result<std::vector<std::uint8_t>> compress(std::span<const std::uint8_t> input,
                                           int level = kCompressionLevel);
Result<std::vector<std::uint8_t>> decompress(std::span<const std::uint8_t> input,
                                             std::size_t max_output);

}  // namespace sqlpost::transport::zstd
