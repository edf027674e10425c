// sqlpost/replication/health.h — what a site tells its parent about itself and its
// children, and what a parent keeps of it, so the consolidated site sees the whole
// hierarchy.
//
// Contract: local_health() is this site's record (its stopped streams and why, the
// conflicts and rejected mail it holds, its oldest unacknowledged outbox part)
// followed by every record its children told it (at most kMaxHealthRecords).
// store_health() keeps what a child sent, in the caller's transaction, replacing
// what it sent before: the first record must be the child's own, else nothing is
// kept; the others are its
// descendants, kept with via = the child, except any claiming to be this site or one
// of its direct partners. A child's report is informational (status, alerts) and
// never changes replication; text is bounded by the payload decoder.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "replication/payload.h"
#include "schema/db.h"

namespace sqlpost {

struct StoredHealth {
  SiteHealth health;
  std::int64_t received_at = 0;
};

Result<std::vector<SiteHealth>> local_health(Database& db, const std::string& site,
                                             const std::string& version, std::int64_t now);

Result<> store_health(Database& db, const std::string& child,
                      const std::vector<SiteHealth>& records, std::int64_t now);

// Every site below this one that reported, ordered by the child it came through.
Result<std::vector<StoredHealth>> load_hierarchy(Database& db);

}  // namespace sqlpost
