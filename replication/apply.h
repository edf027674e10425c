// sqlpost/replication/apply.h — applying a partner's changes to this replica.
//
// Contract: apply_payload() applies every change of a decoded payload inside
// the caller's write transaction (which also holds the OriginMark and records
// "applied n"), so a message is applied whole or not at all. Foreign keys are
// deferred to the end of the transaction. Tables and columns are matched by
// name; a table or column this site does not have is Errc::kUnsupported
// ("schema mismatch"): the caller stops applying that partner's stream rather
// than guess. INSERT of an existing key updates the row; UPDATE carries only
// the changed columns (so changes to different columns of a row merge); UPDATE
// or DELETE of a missing row is counted, not an error. Statements are prepared
// once per connection and reused.
#pragma once

#include "replication/payload.h"
#include "schema/db.h"

namespace sqlpost {

struct ApplyStats {
  std::size_t inserted = 0;
  std::size_t updated = 0;
  std::size_t deleted = 0;
  std::size_t missing = 0;  // update or delete of a row this site does not have
};

Result<ApplyStats> apply_payload(Database& db, const Payload& payload);

}  // namespace sqlpost
