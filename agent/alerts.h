// sqlpost/agent/alerts.h — conditions an administrator must hear about, and the
// Prometheus textfile that carries them to monitoring.
//
// Contract: evaluate_alerts() reads the site (never writes) and returns every
// alert in force at `now`, from thresholds kept as control parameters
// (seconds; 0 switches one off):
//   silent          a partner sent nothing (no message, no acknowledgement) for
//                   alert.silent seconds (default 86400), counted from when it
//                   was added if it never did;
//   unacknowledged  a message to a partner has waited for its acknowledgement
//                   for alert.unacknowledged seconds (default 86400);
//   stopped         applying a partner's messages stopped on an error
//                   (alert.stopped=yes, the default);
//   re-extract      a restore from a backup (of this site or the partner) cannot
//                   be recovered from the change log: re-extract the site
//                   (switched with alert.stopped);
//   rejected        mail was rejected in the last alert.rejected seconds
//                   (default 86400; partner "" when no known partner sent it);
//   bounced         a part to the partner bounced in the last alert.bounced
//                   seconds (default 86400);
//   log_size        the change log keeps alert.log_rows changes or more (default
//                   10 million; partner ""), naming the partner pruning waits for.
// An alert clears by itself once its condition is gone. `sqlpost status` shows
// them; `sqlpost run` logs them and exits with kExitAlert when the pass itself
// went well. write_metrics() rewrites FILE atomically (a temporary file in the
// same folder, fsync, rename) with the metrics listed in docs/operations.md.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "schema/db.h"

namespace sqlpost {

struct Alert {
  std::string kind;
  std::string partner;
  std::int64_t since = 0;  // when the condition began (seconds since the epoch)
  std::string text;
};

inline constexpr std::int64_t kDefaultAlertAfter = 86400;
inline constexpr std::int64_t kDefaultAlertLogRows = 10'000'000;

Result<std::vector<Alert>> evaluate_alerts(Database& db, std::int64_t now);
nlohmann::json alerts_json(const std::vector<Alert>& alerts);
std::string render_alerts_text(const nlohmann::json& alerts);

// The last pass's facts and the alerts, as a Prometheus textfile.
Result<> write_metrics(Database& db, const std::string& file, std::int64_t now, int last_exit_code,
                       const std::vector<Alert>& alerts);

}  // namespace sqlpost
