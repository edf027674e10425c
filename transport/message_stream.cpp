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

PayloadStream::PayloadStream(PartSupplier next, std::uint64_t max_output)
    : parts_(std::move(next)), input_(zstd::kStreamChunk), max_output_(max_output) {}

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
    if (produced_ > max_output_) {
      return make_error(Errc::kLimitExceeded, "decompressed payload exceeds the limit of " +
                                                  std::to_string(max_output_) + " bytes");
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

Result<MessageCompressor> MessageCompressor::create(ByteSink sink) {
  auto measured = std::make_unique<Measured>();
  measured->sink = std::move(sink);
  Measured* m = measured.get();
  SQLPOST_TRY_ASSIGN(zstd::Compressor z,
                     zstd::Compressor::create([m](std::span<const std::uint8_t> bytes) {
                       m->sha.update(bytes);
                       m->size += bytes.size();
                       return m->sink(bytes);
                     }));
  MessageCompressor c(std::move(measured));
  c.zstd_.emplace(std::move(z));
  return c;
}

Result<CompressedMessage> MessageCompressor::finish() {
  SQLPOST_TRY(zstd_->finish());
  return CompressedMessage{measured_->size, measured_->sha.digest()};
}

}  // namespace sqlpost::transport
