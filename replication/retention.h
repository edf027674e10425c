// sqlpost/replication/retention.h — pruning the change log, and rescanning it
// for a partner that lost messages (e.g. restored from an old backup).
//
// Contract: prune_change_log() deletes log rows only of epochs that every
// partner has acknowledged (or that routed nothing to it) and that were closed
// more than `retention_seconds` ago; the newest log row is always kept so
// sequence numbers are never reused. It records the pruned epoch, below which
// rescan is impossible. rescan_partner() makes the stream to `site` start again
// at message `from_seq`: the messages from there on are regenerated from the
// change log (new content, same numbering) on the next run. It refuses, saying
// to re-extract the site, when the log no longer reaches back that far.
// Pruning also forgets sqlpost_applied rows of the pruned epochs.
#pragma once

#include <cstdint>
#include <string>

#include "schema/db.h"

namespace sqlpost {

struct PruneSummary {
  std::int64_t epoch = 0;  // log rows of epochs <= epoch are gone
  std::int64_t rows = 0;
};

Result<PruneSummary> prune_change_log(Database& db, std::int64_t now,
                                      std::int64_t retention_seconds);

// from_seq == 0: from the first message the partner has not acknowledged.
Result<std::int64_t> rescan_partner(Database& db, const std::string& site, std::int64_t from_seq);
// The same inside the caller's write transaction (automatic restore recovery).
Result<std::int64_t> rescan_in_transaction(Database& db, const std::string& site,
                                           std::int64_t from_seq);

// The epoch below which the change log was pruned (0: never).
Result<std::int64_t> pruned_log_epoch(Database& db);

// The partner pruning waits for: the one whose unacknowledged messages need the
// oldest epoch of the change log (site empty when there are no partners).
struct LogHolder {
  std::string site;
  std::int64_t needed_from = 0;  // epoch
};
Result<LogHolder> oldest_log_holder(Database& db);

}  // namespace sqlpost
