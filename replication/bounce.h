// sqlpost/replication/bounce.h — rows a deciding site sends back to a child.
//
// Contract: when a site decides a conflict (or skips a child's change), the origin
// holds values the site did not keep, and it also receives the site's own earlier
// change of that row. remember_decided_row() notes (child, table, key) inside the
// apply transaction. append_decided_rows() adds, at the end of the next payload for
// that child, the row as it is when the message is built — an insert of the whole
// row, or a delete when it is gone — so that everything the site applied before is
// in it; decided_rows_sent() notes, in the transaction that stores the message in
// the outbox, which message carried them. They are forgotten once the child
// acknowledged that message (forget_acknowledged_decided_rows()), and go into the
// next message again when it is dropped unsent or unacknowledged to be regenerated
// from the change log, which does not hold them (requeue_decided_rows(); found by
// the convergence oracle: a restore recovery lost a conflict's decision).
#pragma once

#include <string>

#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

Result<> remember_decided_row(Database& db, const std::string& site, const std::string& table,
                              const Row& key);
Result<> append_decided_rows(Database& db, const Partner& partner, Payload& payload,
                             std::int64_t epoch);
Result<> decided_rows_sent(Database& db, const std::string& site, std::int64_t seq);
Result<> forget_acknowledged_decided_rows(Database& db, const std::string& site, std::int64_t ack);
// Our messages to `site` after `seq` are dropped: what they carried goes again.
Result<> requeue_decided_rows(Database& db, const std::string& site, std::int64_t seq);

}  // namespace sqlpost
