// sqlpost/replication/inbox.h — messages waiting in the inbox (sqlpost_inbox) and
// their decoding within a memory budget (internal to the engine).
//
// Contract: a message is complete when all its parts are stored; it is named by
// its number and the authenticated digest of its compressed bytes. Inbox reads
// and deletes complete messages and decodes them (opening every part with the
// pair key again); it never decides what is applied. BoundedDecoder reassembles a
// message's parts decompressing no further than the budget of its compressed
// size, and limits_for() gives the payload decoder that budget. Both work in the
// caller's transaction, if any. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/payload.h"
#include "replication/payload_stream.h"
#include "replication/rekey.h"
#include "replication/run_context.h"
#include "transport/codec.h"
#include "transport/message_stream.h"

namespace sqlpost {

// One message waiting in the inbox: its number and the authenticated digest of its
// compressed bytes. A partner restored from a backup may have sent two messages
// under one number (docs/protocol.md): both wait, apart, until one is applied.
struct InboxMessage {
  std::int64_t seq = 0;
  Blob digest;
};

// Messages kept under one number; a further one replaces the oldest arrival.
constexpr std::int64_t kMaxMessagesPerNumber = 4;

Blob digest_blob(const transport::crypto::Digest& digest);

// A message's head (all of it for versions 1-3; for a streamed message, version 4,
// every field but its changes, which InboxStream reads batch by batch).
struct LoadedMessage {
  Payload payload;
  std::vector<std::uint8_t> identity;  // message_identity() of its payload
  bool streamed = false;
};

// Changes per apply batch of a streamed message (and at most kBatchBytes of records).
constexpr std::size_t kApplyBatchChanges = 10000;

// A streamed message read from its inbox parts in part order, each opened with the
// pair key as it is reached: decrypt -> decompress -> decode, one part and one
// batch in memory. Not movable (the reader points into it).
class InboxStream {
 public:
  InboxStream(Statement parts, PairKeys keys, std::string local_site, const DecodeLimits& limits);
  InboxStream(const InboxStream&) = delete;
  InboxStream& operator=(const InboxStream&) = delete;
  InboxStream(InboxStream&&) = delete;
  InboxStream& operator=(InboxStream&&) = delete;
  ~InboxStream() = default;

  PayloadReader& reader() { return reader_; }
  // Reads the first payload byte (so only before reader() is used): the layout.
  Result<bool> streamed_layout();

 private:
  Result<std::optional<transport::OpenedPart>> next_part();

  Statement parts_;
  PairKeys keys_;
  std::string local_site_;
  transport::PayloadStream stream_;
  PayloadReader reader_;
};

class BoundedDecoder {
 public:
  explicit BoundedDecoder(const DecodeLimits& limits) : limits_(limits) {}

  // The compressed payload of the parts, decompressed no further than its budget
  // (payload.h: a small message never decodes into something big).
  Result<std::vector<std::uint8_t>> decode_bounded(std::vector<transport::OpenedPart> parts);
  // The payload decoder's limits for what decode_bounded() returned last.
  [[nodiscard]] DecodeLimits limits_for(std::size_t /*decoded_bytes*/) const;

 private:
  const DecodeLimits& limits_;
  std::size_t budget_ = 0;  // of the message being decoded
};

class Inbox {
 public:
  explicit Inbox(RunContext& run) : run_(run), decoder_(run.options.decode_limits) {}

  // The complete messages from `site` numbered first..last, by number and arrival
  // (at most `limit`).
  Result<std::vector<InboxMessage>> complete_messages(const std::string& site, std::int64_t first,
                                                      std::int64_t last, std::int64_t limit);
  // A data message, opened and decoded (Errc::kCorruption, kAuthentication, ...
  // when it cannot be; kUnsupported from a newer sqlpost).
  Result<LoadedMessage> load_message(const Partner& partner, const InboxMessage& message);
  // The changes of a streamed message (LoadedMessage::streamed), from its parts.
  Result<std::unique_ptr<InboxStream>> stream_message(const Partner& partner,
                                                      const InboxMessage& message);
  Result<> delete_inbox_message(const Partner& partner, const InboxMessage& message);

 private:
  Result<Statement> select_parts(const Partner& partner, const InboxMessage& message);
  Result<bool> is_streamed(const Partner& partner, const InboxMessage& message);
  Result<LoadedMessage> load_document(const Partner& partner, const InboxMessage& message);
  Result<std::vector<transport::OpenedPart>> open_inbox_parts(const Partner& partner,
                                                              const InboxMessage& message);
  RunContext& run_;
  BoundedDecoder decoder_;
};

}  // namespace sqlpost
