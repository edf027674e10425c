// sqlpost/replication/apply.h — applying a partner's changes to this replica.
//
// Contract: apply_payload() applies every change of a decoded payload inside
// the caller's write transaction (which also holds the OriginMark and records
// "applied n"), so a message is applied whole or not at all. Tables and columns
// are matched by name; a table or column this site does not have is
// Errc::kUnsupported ("schema mismatch"): the caller stops applying that
// partner's stream rather than guess. Statements are prepared once per
// connection and reused. Conflicts (docs/conflicts.md):
//  * UPDATE carries the old values of the changed columns; a column whose
//    current value is neither the old nor the new one is a conflict. Changes to
//    different columns of a row merge. A site receiving from its parent applies
//    what the parent decided; a site receiving from a child (ctx.decides)
//    resolves each conflict with the article's policy, records it in
//    sqlpost_conflicts (a user trigger there may change the outcome) and then
//    logs the resolved row with itself as origin, so that the child — which also
//    receives this site's own earlier change of the row — ends with it too.
//  * A change from the parent to a column this site changed since the parent last
//    saw its changes is skipped (ctx.pending): the parent has not decided yet.
//  * INSERT of an existing key: an upsert from a parent; a conflict of the
//    differing columns from a child. UPDATE or DELETE of a missing row: recorded,
//    nothing applied. NOT NULL / CHECK / UNIQUE failures: the change is skipped
//    and recorded (a deciding site sends its own row back to the origin).
//    Foreign-key violations left at the end of the message: recorded once per
//    row, rows kept. None of these stops the stream.
// Trust (docs/security.md): with ctx.authorization set, a message naming a table
// or column outside the sender's grant is refused whole (Errc::kAuthentication;
// the caller's transaction rolls back what of it was applied). With ctx.subset set (the sender is a
// child with a row subset), an UPDATE or DELETE — or an INSERT of an existing key — of a row whose
// current image here is outside the child's subset is not applied and is recorded as an
// "outside_subset" conflict; a child may insert rows outside its subset and move rows out of it.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include <optional>

#include "replication/authorize.h"
#include "replication/conflicts.h"
#include "replication/payload.h"
#include "replication/subsets.h"
#include "schema/db.h"

namespace sqlpost {

using PendingColumns = std::map<std::string, Value>;

struct ApplyContext {
  std::string local_site;
  std::string from_site;
  bool decides = false;  // the sender is a child: this site resolves conflicts
  std::map<std::string, ConflictPolicy> policies;  // table -> policy (default incoming)
  std::int64_t now = 0;
  // From the parent: columns (row_column_key(); "*" marks a row it deleted, "+" one it inserted)
  // this site changed after the parent last saw its changes, with the value this site gave each
  // last. The parent's change of such a column is older than ours: it is skipped, the parent
  // decides when ours arrives and sends the decided row back.
  PendingColumns pending;
  // What the sender may change (from this site's metadata); nullopt: not checked.
  std::optional<Authorization> authorization;
  // From a child with a row subset: the rows it holds.
  std::optional<SubsetFilter> subset;
};

struct ApplyStats {
  std::size_t inserted = 0;
  std::size_t updated = 0;
  std::size_t deleted = 0;
  std::size_t missing = 0;              // update or delete of a row this site does not have
  std::size_t conflicts = 0;            // rows written to sqlpost_conflicts
  std::size_t passthrough = 0;          // passthrough statements run
  std::size_t publication_changes = 0;  // article records (publication_change.h)
  std::size_t refused = 0;              // changes of rows outside the sending child's subset
};

// One message applied in batches (a streamed message: replication/payload_stream.h):
// begin(), apply() for each batch in order (each holds every table so far), then
// finish() for what is done once per message (deferred changes retried, decided
// rows sent back, foreign keys checked). All inside the caller's transaction.
class ApplySession {
 public:
  static Result<ApplySession> begin(Database& db, const ApplyContext& context);
  Result<> apply(const Payload& batch);
  Result<ApplyStats> finish();

 private:
  struct State;
  struct StateFree {
    void operator()(State* s) const;
  };
  ApplySession() = default;
  Result<> adopt_tables(const Payload& batch);
  Result<> authorize(const Payload& batch);
  Result<> apply_one(std::int64_t epoch, const WireChange& change);

  std::unique_ptr<State, StateFree> state_;
};

// A whole decoded message: one session, one batch.
Result<ApplyStats> apply_payload(Database& db, const Payload& payload,
                                 const ApplyContext& context = {});

}  // namespace sqlpost
