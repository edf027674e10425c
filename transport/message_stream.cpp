#include "transport/message_stream.h"

#include <algorithm>

namespace sqlpost::transport {

Result<bool> CompressedParts::load_next_part() {
  SQLPOST_TRY_ASSIGN(std::optional<OpenedPart> part, next_());
  if (!part) {
    return false;
  }
  if (!first_) {
    first_ = OpenedPart{part->header, part->compressed_size, part->offset, part->digest, {}};
  }
  if (!same_message(*first_, *part)) {
    return make_error(Errc::kInvalidArgument, "parts belong to different messages");
  }
  if (part->header.part != parts_seen_ + 1) {
    return make_error(Errc::kNotFound, "part " + std::to_string(parts_seen_ + 1) + " of " +
                                           std::to_string(first_->header.parts) + " is missing");
  }
  if (part->offset != consumed_) {
    return make_error(Errc::kCorruption, "part offsets are not contiguous");
  }
  ++parts_seen_;
  sha_.update(part->data);
  data_ = std::move(part->data);
  pos_ = 0;
  return true;
}

Result<> CompressedParts::check_complete() {
  if (!first_) {
    return make_error(Errc::kInvalidArgument, "no parts to reassemble");
  }
  if (parts_seen_ != first_->header.parts) {
    return make_error(Errc::kNotFound, "part " + std::to_string(parts_seen_ + 1) + " of " +
                                           std::to_string(first_->header.parts) + " is missing");
  }
  if (consumed_ != first_->compressed_size) {
    return make_error(Errc::kCorruption, "parts do not add up to the compressed size");
  }
  if (sha_.digest() != first_->digest) {
    return make_error(Errc::kCorruption, "digest of the reassembled message does not match");
  }
  return success();
}

Result<std::size_t> CompressedParts::read(std::span<std::uint8_t> out) {
  while (!ended_ && pos_ == data_.size()) {
    SQLPOST_TRY_ASSIGN(const bool more, load_next_part());
    if (!more) {
      SQLPOST_TRY(check_complete());
      ended_ = true;
    }
  }
  const std::size_t n = std::min(out.size(), data_.size() - pos_);
  std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(pos_), n, out.begin());
  pos_ += n;
  consumed_ += n;
  return n;
}

PayloadStream::PayloadStream(PartSupplier next, OutputLimit limit)
    : parts_(std::move(next)), input_(zstd::kStreamChunk), limit_(limit) {}

Result<> PayloadStream::refill() {
  SQLPOST_TRY_ASSIGN(const std::size_t n, parts_.read(input_));
  input_ended_ = n == 0;
  pending_ = std::span<const std::uint8_t>(input_.data(), n);
  return success();
}

Result<std::size_t> PayloadStream::read(std::span<std::uint8_t> out) {
  if (!zstd_) {
    SQLPOST_TRY_ASSIGN(zstd::Decompressor d, zstd::Decompressor::create());
    zstd_.emplace(std::move(d));
  }
  for (;;) {
    if (pending_.empty() && !input_ended_) {
      SQLPOST_TRY(refill());
    }
    if (zstd_->frame_done()) {
      return end_of_frame();
    }
    SQLPOST_TRY_ASSIGN(const std::size_t n, zstd_->step(pending_, out));
    produced_ += n;
    const std::uint64_t size = parts_.compressed_size();
    const std::uint64_t max_output =
        size > UINT64_MAX / std::max<std::uint64_t>(1, limit_.expansion)
            ? UINT64_MAX
            : std::max(limit_.floor, limit_.expansion * size);
    if (produced_ > max_output) {
      return make_error(Errc::kLimitExceeded, "decompressed payload exceeds the limit of " +
                                                  std::to_string(max_output) + " bytes");
    }
    if (n > 0) {
      return n;
    }
    if (pending_.empty() && input_ended_ && !zstd_->frame_done()) {
      return make_error(Errc::kCorruption, "compressed payload is truncated");
    }
  }
}

// The parts must end with the frame (their digest is checked when they end).
Result<std::size_t> PayloadStream::end_of_frame() {
  while (pending_.empty() && !input_ended_) {
    SQLPOST_TRY(refill());
  }
  if (!pending_.empty()) {
    return make_error(Errc::kCorruption, "data after the compressed payload");
  }
  return std::size_t{0};
}

namespace {

std::vector<std::uint8_t>& spare_chunk() {
  thread_local std::vector<std::uint8_t> spare;
  return spare;
}

}  // namespace

ReusedChunk::ReusedChunk() {
  bytes_.swap(spare_chunk());
  bytes_.resize(zstd::kStreamChunk);  // zeroes only a new buffer
}

ReusedChunk::~ReusedChunk() {
  if (spare_chunk().empty()) {
    spare_chunk().swap(bytes_);
  }
}

// One fixed-size chunk of payload (or its end) into zstd.
Result<> CompressingSource::refill() {
  if (!zstd_) {
    SQLPOST_TRY_ASSIGN(zstd::Compressor z,
                       zstd::Compressor::create([this](std::span<const std::uint8_t> bytes) {
                         output_.insert(output_.end(), bytes.begin(), bytes.end());
                         return success();
                       }));
    zstd_.emplace(std::move(z));
  }
  output_.clear();
  output_pos_ = 0;
  const std::span<std::uint8_t> input = input_.bytes();
  std::size_t filled = 0;
  while (filled < input.size()) {
    SQLPOST_TRY_ASSIGN(const std::size_t n, payload_.read(input.subspan(filled)));
    if (n == 0) {
      break;
    }
    filled += n;
  }
  SQLPOST_TRY(zstd_->write(input.first(filled)));
  if (filled < input.size()) {
    SQLPOST_TRY(zstd_->finish());
    finished_ = true;
  }
  return success();
}

Result<std::size_t> CompressingSource::read(std::span<std::uint8_t> out) {
  while (output_pos_ == output_.size() && !finished_) {
    SQLPOST_TRY(refill());
  }
  const std::size_t n = std::min(out.size(), output_.size() - output_pos_);
  std::copy_n(output_.begin() + static_cast<std::ptrdiff_t>(output_pos_), n, out.begin());
  sha_.update(out.first(n));
  size_ += n;
  output_pos_ += n;
  return n;
}

Result<CompressedMessage> measure_compressed(ByteSource& payload) {
  SQLPOST_TRY_ASSIGN(MeasuredMessage measured, measure_compressed(payload, 0));
  return measured.message;
}

Result<MeasuredMessage> measure_compressed(ByteSource& payload, std::size_t keep_up_to) {
  CompressingSource compressed(payload);
  std::vector<std::uint8_t> kept;
  bool keeping = true;
  constexpr std::size_t kScratchBytes = std::size_t{16} << 10;
  std::vector<std::uint8_t> scratch(kScratchBytes);
  for (;;) {
    SQLPOST_TRY_ASSIGN(const std::size_t n, compressed.read(scratch));
    if (n == 0) {
      break;
    }
    keeping = keeping && kept.size() + n <= keep_up_to;
    if (keeping) {
      kept.insert(kept.end(), scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(n));
    } else {
      std::vector<std::uint8_t>().swap(kept);
    }
  }
  MeasuredMessage measured{compressed.read_so_far(), std::nullopt};
  if (keeping) {
    measured.kept = std::move(kept);
  }
  return measured;
}

}  // namespace sqlpost::transport
