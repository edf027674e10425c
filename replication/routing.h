// sqlpost/replication/routing.h — which captured changes go to which partner.
//
// Contract: collect_changes_for() reads the closed epochs (after, upto] of the
// change log and keeps, for `partner`, the changes of the tables routed to it
// (a child: the tables of the publications it subscribes to; the parent: every
// published table) that did not come from it (origin != partner, so nothing is
// echoed back). The result is a data Payload without ack fields; epochs without
// routed changes are left out. UPDATEs that change no captured column are
// dropped. Values are copied, never re-encoded.
#pragma once

#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

Result<Payload> collect_changes_for(Database& db, const Partner& partner, std::int64_t after_epoch,
                                    std::int64_t upto_epoch);

}  // namespace sqlpost
