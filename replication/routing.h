// sqlpost/replication/routing.h — which captured changes go to which partner.
//
// Contract: collect_changes_for() reads the closed epochs (after, upto] of the
// change log and keeps, for `partner`, the changes of the tables routed to it
// (a child: the tables of the publications it subscribes to; the parent: every
// published table) that did not come from it (origin != partner, so nothing is
// echoed back). The result is a data Payload without ack fields; epochs without
// routed changes are left out. UPDATEs that change no captured column are
// dropped. Values are copied, never re-encoded. Row subsets (subsets.h): a row
// entering a child's subset arrives as an insert, one leaving it as a delete (also
// when the child's own change moved it). Changes the partner superseded or deleted
// later in the same range are left out for it. Exception to "never echoed": the
// partner's own changes inside its echo window (sqlpost_streams.echo_from..echo_to,
// set when it was restored from a backup, replication/restore.h) go back to it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

// Where a partner's routed changes go, in order: each table once, before its first
// change (tables are numbered in the order given), then changes by epoch. A
// Payload in memory (collect_changes_for) or the records of a streamed message
// (replication/spool.h).
class BodyTarget {
 public:
  BodyTarget() = default;
  BodyTarget(const BodyTarget&) = delete;
  BodyTarget& operator=(const BodyTarget&) = delete;
  BodyTarget(BodyTarget&&) = delete;
  BodyTarget& operator=(BodyTarget&&) = delete;
  virtual ~BodyTarget() = default;
  virtual void table(const TableBlock& t) = 0;
  virtual void change(std::int64_t epoch, WireChange&& c) = 0;
};

Result<Payload> collect_changes_for(Database& db, const Partner& partner, std::int64_t after_epoch,
                                    std::int64_t upto_epoch);

// The same for many partners in one pass over the log per distinct send position
// (partner.sent_epoch): row subsets are evaluated once per change image and the
// subscribers found by value, so the cost grows with the rows routed, not with
// partners x changes. The result maps partner name -> payload.
Result<std::map<std::string, Payload>> collect_changes_for_all(Database& db,
                                                               const std::vector<Partner>& partners,
                                                               std::int64_t upto_epoch);

// The same into the partners' own targets (targets.at(partner.name) for each).
Result<> route_changes_for_all(Database& db, const std::vector<Partner>& partners,
                               std::int64_t upto_epoch,
                               const std::map<std::string, BodyTarget*>& targets);

}  // namespace sqlpost
