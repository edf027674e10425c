// sqlpost/replication/outbox.h — re-encoding messages waiting in the outbox.
//
// Contract: reencode_outbox() takes every unacknowledged message to `site` from
// sequence `from` on out of sqlpost_outbox, opens its parts with the pair's key,
// reassembles the payload and encodes it again at `max_message_bytes` (same
// sequence number, same compressed bytes, so the same digest; only the split
// into parts changes), replacing the stored parts and making them due at once, in
// the caller's write transaction. A receiver holding parts of the older encoding
// drops them when a part of the new one arrives (a different part count). Returns
// the number of messages re-encoded; a message whose parts no longer open is an
// error naming it (nothing is changed). With `reseal_under`, every message is
// sealed under that key instead of the one it was sealed under (a pair key set by
// hand, replication/rekey.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "schema/db.h"
#include "transport/key.h"

namespace sqlpost {

struct ReencodeSummary {
  std::int64_t messages = 0;
  std::int64_t parts_before = 0;
  std::int64_t parts_after = 0;
};

Result<ReencodeSummary> reencode_outbox(Database& db, const std::string& site, std::int64_t from,
                                        std::size_t max_message_bytes);
Result<ReencodeSummary> reencode_outbox(Database& db, const std::string& site, std::int64_t from,
                                        std::size_t max_message_bytes,
                                        const std::optional<transport::Key>& reseal_under);

}  // namespace sqlpost
