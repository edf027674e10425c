// sqlpost/replication/applier.h — applying each partner's messages in order,
// exactly once (internal to the engine; Engine::apply()).
//
// Contract: apply_next() applies the partner's next message when it is complete:
// message n only after n-1 (or, after the partner recovered from a restore, the
// first later message that names the one applied last as its predecessor), with
// its changes, the "applied n" record and its acknowledgement handling in one
// transaction, under an origin mark naming the partner. A message that cannot be
// decoded is set aside in sqlpost_rejected; one from a newer sqlpost, or one
// whose apply fails, halts the stream (retried on every run); one of a timeline
// the partner abandoned is dropped. watch_gap() notes when a gap began and, after
// gap_patience, asks the partner to resend (at most once per resend_interval).
// Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "replication/apply.h"
#include "replication/inbox.h"
#include "replication/run_context.h"

namespace sqlpost {

class Applier {
 public:
  explicit Applier(RunContext& run) : run_(run), inbox_(run) {}

  // True when a message was applied or dropped (look again).
  Result<bool> apply_next(const Partner& partner);
  Result<> watch_gap(const Partner& partner);

 private:
  Result<bool> follows_applied(const Partner& partner, const InboxMessage& message,
                               const LoadedMessage& loaded);
  Result<> remember_abandoned(const Partner& partner, std::span<const std::uint8_t> identity);
  Result<bool> follows_abandoned(const Partner& partner, const Payload& payload);
  Result<> drop_abandoned(const Partner& partner, const InboxMessage& message,
                          const LoadedMessage& loaded);
  Result<> discard_message(const Partner& partner, const InboxMessage& message,
                           const std::string& why);
  Result<> halt(const Partner& partner, const Error& e);
  Result<ApplyContext> apply_context(const Partner& partner);
  Result<std::int64_t> epoch_seen_by(const Partner& partner, std::uint64_t ack);
  Result<PendingColumns> pending_columns(const Partner& parent, std::int64_t seen_epoch);
  Result<ApplyStats> apply_changes(const Partner& partner, const LoadedMessage& message,
                                   const ApplyContext& context, const InboxMessage& next,
                                   bool& unreadable);
  Result<> apply_in_transaction(const Partner& partner, const InboxMessage& next,
                                const LoadedMessage& message, bool& unreadable);
  Result<> set_aside(const Partner& partner, const InboxMessage& message, const Error& e);
  bool continues(const Partner& partner, const InboxMessage& message,
                 const std::vector<std::uint8_t>& identity);
  Result<std::optional<InboxMessage>> next_applicable(const Partner& partner, std::int64_t applied);

  RunContext& run_;
  Inbox inbox_;
};

}  // namespace sqlpost
