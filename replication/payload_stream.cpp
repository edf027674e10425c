#include "replication/payload_stream.h"

#include <algorithm>
#include <array>

#include "replication/payload_cbor.h"

namespace sqlpost {
namespace {

using payload_detail::corrupt;
using payload_detail::json;

enum RecordType : std::uint64_t { kTable = 0, kEpoch = 1, kChange = 2, kEnd = 3 };

constexpr std::uint8_t kByteStringMajor = 2;
constexpr std::size_t kReadChunk = std::size_t{64} << 10;

// A CBOR byte string head for `length` bytes (RFC 8949, major type 2).
void append_byte_string_head(std::vector<std::uint8_t>& out, std::uint64_t length) {
  constexpr std::uint8_t kMajor = kByteStringMajor << 5;
  if (length < 24) {
    out.push_back(static_cast<std::uint8_t>(kMajor | length));
    return;
  }
  int bytes = 8;
  std::uint8_t info = 27;
  if (length <= 0xff) {
    bytes = 1;
    info = 24;
  } else if (length <= 0xffff) {
    bytes = 2;
    info = 25;
  } else if (length <= 0xffffffff) {
    bytes = 4;
    info = 26;
  }
  out.push_back(static_cast<std::uint8_t>(kMajor | info));
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
  }
}

std::vector<std::uint8_t> framed(const json& item) {
  const std::vector<std::uint8_t> body = json::to_cbor(item);
  std::vector<std::uint8_t> out;
  out.reserve(body.size() + 9);
  append_byte_string_head(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

DecodeLimits record_limits(const DecodeLimits& limits, std::size_t record_bytes) {
  DecodeLimits l = limits;
  l.memory_budget = kDecodeFloorBytes + 2 * record_bytes;
  return l;
}

}  // namespace

std::size_t max_record_bytes(const DecodeLimits& limits) {
  return 4 * limits.max_value_bytes + (std::size_t{1} << 20);
}

std::vector<std::uint8_t> encode_head(const Payload& head) {
  return framed(payload_detail::head_to_json(head, kPayloadVersionStreamed));
}

std::vector<std::uint8_t> encode_end(std::uint64_t changes) {
  return framed(json::array({kEnd, changes}));
}

// ---- writing

void BodyWriter::table(const TableBlock& t) {
  json item = payload_detail::table_to_json(t);
  item.insert(item.begin(), kTable);
  append_record(framed(item));
}

void BodyWriter::change(std::int64_t epoch, const WireChange& c) {
  if (!has_epoch_ || epoch != epoch_) {
    append_record(framed(json::array({kEpoch, epoch})));
    epoch_ = epoch;
    has_epoch_ = true;
  }
  json item = payload_detail::change_to_json(c);
  item.insert(item.begin(), kChange);
  append_record(framed(item));
  ++changes_;
}

void BodyWriter::append_record(std::vector<std::uint8_t>&& item) {
  buffer_.insert(buffer_.end(), item.begin(), item.end());
  if (buffer_.size() >= chunk_bytes_) {
    flush();
  }
}

void BodyWriter::flush() {
  if (!failure_ && !buffer_.empty()) {
    auto written = sink_(buffer_);
    if (!written.ok()) {
      failure_ = written.take_error();
    }
  }
  buffer_.clear();
}

Result<> BodyWriter::finish() {
  flush();
  if (failure_) {
    return *failure_;
  }
  return success();
}

// ---- reading

Result<bool> PayloadReader::read_bytes(std::span<std::uint8_t> out) {
  std::size_t filled = 0;
  while (filled < out.size()) {
    if (pos_ == buffer_.size()) {
      buffer_.resize(kReadChunk);
      SQLPOST_TRY_ASSIGN(const std::size_t n, source_.read(buffer_));
      buffer_.resize(n);
      pos_ = 0;
      if (n == 0) {
        if (filled == 0) {
          return false;
        }
        return corrupt("the payload ends inside a record");
      }
    }
    const std::size_t n = std::min(out.size() - filled, buffer_.size() - pos_);
    std::copy_n(buffer_.begin() + static_cast<std::ptrdiff_t>(pos_), n,
                out.begin() + static_cast<std::ptrdiff_t>(filled));
    pos_ += n;
    filled += n;
  }
  return true;
}

Result<std::uint64_t> PayloadReader::record_length(std::uint8_t first) {
  const std::uint8_t info = first & 0x1f;
  if ((first >> 5) != kByteStringMajor || info > 27) {
    return corrupt("a record is not a definite-length byte string");
  }
  if (info < 24) {
    return std::uint64_t{info};
  }
  std::array<std::uint8_t, 8> bytes{};
  const std::size_t n = std::size_t{1} << (info - 24);
  SQLPOST_TRY_ASSIGN(const bool got, read_bytes(std::span(bytes).first(n)));
  if (!got) {
    return corrupt("the payload ends inside a record");
  }
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < n; ++i) {
    length = (length << 8) | bytes[i];
  }
  return length;
}

// The next record into `record` (its buffer reused from record to record); false
// at a clean end of the payload.
Result<bool> PayloadReader::read_record(std::vector<std::uint8_t>& record) {
  std::array<std::uint8_t, 1> first{};
  SQLPOST_TRY_ASSIGN(const bool any, read_bytes(first));
  if (!any) {
    return false;
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t length, record_length(first[0]));
  if (length > max_record_bytes(limits_)) {
    return make_error(Errc::kLimitExceeded, "a payload record of " + std::to_string(length) +
                                                " bytes is larger than the limit of " +
                                                std::to_string(max_record_bytes(limits_)) +
                                                " (4 x limits.max_value_bytes + 1 MiB)");
  }
  record.resize(static_cast<std::size_t>(length));
  SQLPOST_TRY_ASSIGN(const bool got, read_bytes(record));
  if (!got && length > 0) {
    return corrupt("the payload ends inside a record");
  }
  return true;
}

Result<Payload> PayloadReader::head() {
  SQLPOST_TRY_ASSIGN(const bool any, read_record(record_));
  if (!any) {
    return corrupt("an empty payload");
  }
  SQLPOST_TRY_ASSIGN(json doc, payload_detail::parse_cbor_bounded(
                                   record_, record_limits(limits_, record_.size())));
  try {
    return payload_detail::payload_head_from_json(doc, true);
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
}

Result<> PayloadReader::check_end(std::uint64_t declared) {
  if (declared != changes_) {
    return corrupt("the end record counts " + std::to_string(declared) + " changes, " +
                   std::to_string(changes_) + " came");
  }
  SQLPOST_TRY_ASSIGN(const bool after, read_record(record_));
  if (after) {
    return corrupt("data after the end record");
  }
  ended_ = true;
  return success();
}

// A decoded change into the batch, within limits.max_changes and the memory budget.
Result<bool> PayloadReader::take_change(WireChange&& c, std::size_t record_bytes, Payload& batch) {
  if (!has_epoch_) {
    return corrupt("a change before any epoch record");
  }
  if (++changes_ > limits_.max_changes) {
    return make_error(Errc::kLimitExceeded, "a message has more than " +
                                                std::to_string(limits_.max_changes) +
                                                " changes (limits.max_changes)");
  }
  // The decoded change costs about twice its record, plus the values' objects.
  batch_estimate_ += 2 * record_bytes + 256;
  if (batch_estimate_ > limits_.memory_budget) {
    return make_error(Errc::kLimitExceeded,
                      "the message would take more than " + std::to_string(limits_.memory_budget) +
                          " bytes to decode, more than its size allows (at most "
                          "limits.max_decode_bytes; docs/security.md)");
  }
  if (batch.epochs.empty() || batch.epochs.back().epoch != epoch_) {
    batch.epochs.push_back(EpochBlock{epoch_, {}});
  }
  batch.epochs.back().changes.push_back(std::move(c));
  return true;
}

// One record into the batch; true when it was a change. A plain change record
// (nearly every record) is decoded in one pass; the rest the general way.
Result<bool> PayloadReader::take_record(std::vector<std::uint8_t>& bytes, Payload& batch) {
  if (auto c = payload_detail::fast_change_from_cbor(bytes, tables_, limits_.max_value_bytes)) {
    return take_change(std::move(*c), bytes.size(), batch);
  }
  SQLPOST_TRY_ASSIGN(
      json item, payload_detail::parse_cbor_bounded(bytes, record_limits(limits_, bytes.size())));
  if (!item.is_array() || item.empty()) {
    return corrupt("a record is not a list");
  }
  SQLPOST_TRY_ASSIGN(const std::uint64_t type, payload_detail::unsigned_field(item[0], "record"));
  item.erase(0);
  switch (type) {
    case kTable: {
      if (tables_.size() >= kMaxPayloadTables) {
        return corrupt("more than " + std::to_string(kMaxPayloadTables) + " tables");
      }
      SQLPOST_TRY_ASSIGN(TableBlock t, payload_detail::table_from_json(item));
      tables_.push_back(std::move(t));
      batch.tables = tables_;
      return false;
    }
    case kEpoch:
      if (item.size() != 1 || !item[0].is_number_integer()) {
        return corrupt("an epoch record is not [1, number]");
      }
      epoch_ = item[0].get<std::int64_t>();
      has_epoch_ = true;
      return false;
    case kChange: {
      if (!has_epoch_) {
        return corrupt("a change before any epoch record");
      }
      SQLPOST_TRY_ASSIGN(WireChange c, payload_detail::change_from_json(item, tables_));
      return take_change(std::move(c), bytes.size(), batch);
    }
    case kEnd: {
      if (item.size() != 1) {
        return corrupt("the end record is not [3, count]");
      }
      SQLPOST_TRY_ASSIGN(const std::uint64_t declared,
                         payload_detail::unsigned_field(item[0], "count"));
      SQLPOST_TRY(check_end(declared));
      return false;
    }
    default: return corrupt("unknown record type " + std::to_string(type));
  }
}

Result<bool> PayloadReader::next(Payload& batch, std::size_t max_changes, std::size_t max_bytes) {
  batch.tables = tables_;
  batch.epochs.clear();
  batch_estimate_ = 0;
  std::size_t taken = 0;
  std::size_t bytes = 0;
  while (!ended_ && taken < max_changes && bytes < max_bytes) {
    SQLPOST_TRY_ASSIGN(const bool any, read_record(record_));
    if (!any) {
      return corrupt("the payload ends without its end record");
    }
    bytes += record_.size();
    try {
      SQLPOST_TRY_ASSIGN(const bool change, take_record(record_, batch));
      taken += change ? 1 : 0;
    } catch (const json::exception& e) {
      return corrupt(e.what());
    }
  }
  return taken > 0;
}

Result<Payload> decode_streamed_payload(std::span<const std::uint8_t> bytes,
                                        const DecodeLimits& limits) {
  SpanSource source(bytes);
  PayloadReader reader(source, limits);
  SQLPOST_TRY_ASSIGN(Payload payload, reader.head());
  Payload batch;
  if (payload.kind == PayloadKind::kAckOnly) {  // a control message carries no changes
    SQLPOST_TRY_ASSIGN(const bool any, reader.next(batch, 1));
    if (any) {
      return corrupt("an acknowledgement-only message carries changes");
    }
    return payload;
  }
  SQLPOST_TRY(reader.next(batch, SIZE_MAX, SIZE_MAX));
  Payload rest;
  SQLPOST_TRY_ASSIGN(const bool more, reader.next(rest, SIZE_MAX, SIZE_MAX));
  if (more) {
    return make_error(Errc::kInternal, "a whole payload read in more than one batch");
  }
  payload.tables = std::move(batch.tables);
  payload.epochs = std::move(batch.epochs);
  return payload;
}

}  // namespace sqlpost
