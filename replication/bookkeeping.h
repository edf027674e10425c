// sqlpost/replication/bookkeeping.h — bounded records of what a site refused or
// left alone, so that nobody who knows the address can fill the disk.
//
// Contract: cap_rejected() keeps sqlpost_rejected within kMaxRejectedRows rows
// and kMaxRejectedBytes bytes of kept mail, and drops rows older than
// kRecordRetentionSeconds, oldest first; cap_foreign() does the same for
// sqlpost_foreign_mail (rows and age: a foreign mail forgotten and still in the
// mailbox is downloaded again once and remembered again). Each drop is counted in
// sqlpost_meta ('rejected_dropped', 'foreign_dropped'), which status shows. A
// rejected mail keeps at most kMaxRejectedMailKept bytes. Call inside the
// caller's write transaction, after inserting.
#pragma once

#include <cstddef>
#include <cstdint>

#include "schema/db.h"

namespace sqlpost {

inline constexpr std::size_t kMaxRejectedMailKept = std::size_t{16} * 1024;
inline constexpr std::int64_t kMaxRejectedRows = 500;
inline constexpr std::int64_t kMaxRejectedBytes = std::int64_t{4} << 20;  // 4 MiB
inline constexpr std::int64_t kMaxForeignRows = 10'000;
inline constexpr std::int64_t kRecordRetentionSeconds = std::int64_t{30} * 24 * 3600;

Result<> cap_rejected(Database& db, std::int64_t now);
Result<> cap_foreign(Database& db, std::int64_t now);

struct DroppedRecords {
  std::int64_t rejected = 0;
  std::int64_t foreign = 0;
};
Result<DroppedRecords> load_dropped_records(Database& db);

}  // namespace sqlpost
