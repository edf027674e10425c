// sqlpost/replication/preparer.h — storing each partner's next message in the
// outbox (internal to the engine; Engine::prepare()).
//
// Contract: prepare_for() stores, for one partner, the next message (the routed
// changes since the partner's position, spooled (spool.h), or a restore request of
// ours) in the outbox together with the advance of that position and of the
// stream; the message streams from the spool into its parts, never whole in memory. The
// partners' messages are written in one open batch transaction, each in its own
// savepoint: a partner whose message cannot be prepared is reported and left
// out; a database failure is returned. The batch is committed once it holds
// kOutboxBatchBytes, and by commit_outbox_batch() at the end of the pass; a
// Preparer destroyed with an open batch rolls it back. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "replication/payload.h"
#include "replication/run_context.h"
#include "replication/spool.h"

namespace sqlpost {

class Preparer {
 public:
  explicit Preparer(RunContext& run) : run_(run) {}

  Result<> prepare_for(const Partner& partner, SpooledBody& body, std::int64_t closed);
  Result<> commit_outbox_batch();

 private:
  void warn_if_over_limits(const Partner& partner, std::int64_t seq, std::size_t changes);
  struct Stored {
    std::int64_t bytes = 0;
    std::uint32_t parts = 0;
    std::vector<std::uint8_t> identity;
  };
  Result<Stored> store_parts(const Partner& partner, std::int64_t seq, SpooledBody& body,
                             const Payload& head);
  Result<> store_outgoing(const Partner& partner, SpooledBody& body, Payload head,
                          std::int64_t closed);

  RunContext& run_;
  // The pass's open outbox batch (see prepare_for) and what it holds.
  std::optional<Transaction> batch_;
  std::int64_t batch_bytes_ = 0;
};

}  // namespace sqlpost
