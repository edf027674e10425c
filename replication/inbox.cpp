#include "replication/inbox.h"

#include <algorithm>
#include <array>

#include "replication/rekey.h"

namespace sqlpost {

Blob digest_blob(const transport::crypto::Digest& digest) {
  return Blob{std::vector<std::uint8_t>(digest.begin(), digest.end())};
}

Result<std::vector<transport::OpenedPart>> Inbox::open_inbox_parts(const Partner& partner,
                                                                   const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(const PairKeys keys, opening_keys(run_.db, partner.name));
  SQLPOST_TRY_ASSIGN(Statement st, select_parts(partner, message));
  std::vector<transport::OpenedPart> parts;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    SQLPOST_TRY_ASSIGN(transport::OpenedPart part,
                       open_with_pair_keys(blob_text(st.column(0)), keys, run_.local.name));
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<std::vector<InboxMessage>> Inbox::complete_messages(const std::string& site,
                                                           std::int64_t first, std::int64_t last,
                                                           std::int64_t limit) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("SELECT seq, digest FROM sqlpost_inbox WHERE site = ? AND seq "
                                    "BETWEEN ? AND ? GROUP BY seq, digest HAVING count(*) >= "
                                    "max(parts) ORDER BY seq, min(received_at) LIMIT ?"));
  st->bind(1, site).bind(2, first).bind(3, last).bind(4, limit);
  return st->rows([](const Statement& row) {
    return InboxMessage{row.column_int(0), as_blob(blob_text(row.column(1)))};
  });
}

Result<LoadedMessage> Inbox::load_document(const Partner& partner, const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(auto parts, open_inbox_parts(partner, message));
  SQLPOST_TRY_ASSIGN(const auto bytes, decoder_.decode_bounded(std::move(parts)));
  SQLPOST_TRY_ASSIGN(Payload payload, decode_payload(bytes, decoder_.limits_for(bytes.size())));
  return LoadedMessage{std::move(payload), message_identity(bytes), false};
}

Result<LoadedMessage> Inbox::load_message(const Partner& partner, const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(const bool streamed, is_streamed(partner, message));
  LoadedMessage loaded;
  if (streamed) {
    SQLPOST_TRY_ASSIGN(auto stream, stream_message(partner, message));
    SQLPOST_TRY_ASSIGN(loaded.payload, stream->reader().head());
    // A streamed message is named by the authenticated digest of its compressed
    // bytes, which both ends know before reading it (docs/protocol.md).
    loaded.identity.assign(
        message.digest.bytes.begin(),
        message.digest.bytes.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(
                                           kMessageDigestBytes, message.digest.bytes.size())));
    loaded.streamed = true;
  } else {
    SQLPOST_TRY_ASSIGN(loaded, load_document(partner, message));
  }
  if (loaded.payload.kind != PayloadKind::kData) {
    return make_error(Errc::kCorruption, "a sequenced message is not a data message");
  }
  return loaded;
}

Result<Statement> Inbox::select_parts(const Partner& partner, const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(Statement st, run_.db.prepare("SELECT mail FROM sqlpost_inbox WHERE site = ? "
                                                   "AND seq = ? AND digest = ? ORDER BY part"));
  st.bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
  return st;
}

// The first payload byte tells the layout (payload.h, is_streamed_payload).
Result<bool> Inbox::is_streamed(const Partner& partner, const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(auto stream, stream_message(partner, message));
  return stream->streamed_layout();
}

Result<std::unique_ptr<InboxStream>> Inbox::stream_message(const Partner& partner,
                                                           const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(Statement st, select_parts(partner, message));
  SQLPOST_TRY_ASSIGN(PairKeys keys, opening_keys(run_.db, partner.name));
  DecodeLimits limits = run_.options.decode_limits;
  limits.memory_budget = SIZE_MAX;  // each record and batch is bounded on its own
  return std::make_unique<InboxStream>(std::move(st), std::move(keys), run_.local.name, limits);
}

Result<> Inbox::delete_inbox_message(const Partner& partner, const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(Statement * del, run_.db.cached("DELETE FROM sqlpost_inbox WHERE site = ? AND "
                                                     "seq = ? AND digest = ?"));
  del->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
  return del->run();
}

Result<std::vector<std::uint8_t>> BoundedDecoder::decode_bounded(
    std::vector<transport::OpenedPart> parts) {
  const std::size_t compressed =
      parts.empty() ? 0 : static_cast<std::size_t>(parts.front().compressed_size);
  budget_ = decode_budget(compressed, limits_.max_decode_bytes);
  return transport::reassemble(std::move(parts), budget_);
}

DecodeLimits BoundedDecoder::limits_for(std::size_t /*decoded_bytes*/) const {
  DecodeLimits limits = limits_;
  limits.memory_budget = std::min(limits.memory_budget, budget_);
  return limits;
}

// A streamed message holds no more than its size allows in memory at once, so its
// decompressed size is bounded only against bombs: kMaxDecodeExpansion x |C|.
InboxStream::InboxStream(Statement parts, PairKeys keys, std::string local_site,
                         const DecodeLimits& limits)
    : parts_(std::move(parts)),
      keys_(std::move(keys)),
      local_site_(std::move(local_site)),
      stream_([this] { return next_part(); }, {kDecodeFloorBytes, kMaxDecodeExpansion}),
      reader_(stream_, limits) {}

Result<bool> InboxStream::streamed_layout() {
  std::array<std::uint8_t, 1> first{};
  SQLPOST_TRY_ASSIGN(const std::size_t n, stream_.read(first));
  return n == 1 && is_streamed_payload(first);
}

Result<std::optional<transport::OpenedPart>> InboxStream::next_part() {
  SQLPOST_TRY_ASSIGN(const bool row, parts_.step());
  if (!row) {
    return std::optional<transport::OpenedPart>{};
  }
  SQLPOST_TRY_ASSIGN(transport::OpenedPart part,
                     open_with_pair_keys(blob_text(parts_.column(0)), keys_, local_site_));
  return std::optional<transport::OpenedPart>{std::move(part)};
}

}  // namespace sqlpost
