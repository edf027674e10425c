// sqlpost/agent/history.h — what the agent did, kept in the site's database for
// an administrator: runs, the message log, statistics per partner per day, and
// the queues (sqlpost log, stats, queue).
//
// Contract: record_pass() writes, after a pass, one sqlpost_runs row (start,
// end, pid, mode, outcome, exit code, counts, first problem), one
// sqlpost_message_log row per MessageEvent of the pass and the matching
// additions to sqlpost_stats (UTC day, partner), in one transaction; then it
// prunes runs and message log rows older than history_retention seconds
// (default 90 days) and statistics older than stats_retention (default 400
// days), so the history stays bounded. A pass that failed before it had a
// report is recorded with its error and no events. History is written after
// the pass: a pass killed mid-way leaves no run row (its data is safe: each
// step of a pass is its own transaction). The JSON documents carry "schema"
// and "schema_version" and are described in docs/json.md.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "replication/engine.h"
#include "schema/db.h"

namespace sqlpost {

inline constexpr std::int64_t kDefaultHistoryRetention = std::int64_t{90} * 24 * 3600;
inline constexpr std::int64_t kDefaultStatsRetention = std::int64_t{400} * 24 * 3600;

struct PassRecord {
  std::int64_t started_at = 0;
  std::int64_t ended_at = 0;
  std::string mode;  // "full", "send-only", "receive-only"
  int exit_code = 0;
  const RunReport* report = nullptr;  // null when the pass failed without one
  std::string error;                  // the failure's message when report is null
};

Result<> record_pass(Database& db, const PassRecord& pass);
// Opens the site at `path` and records the pass there.
Result<> record_pass(const std::string& path, const PassRecord& pass);

struct LogQuery {
  std::string partner;       // empty: every partner
  std::int64_t since = 0;    // seconds since the epoch; 0: everything kept
  std::int64_t limit = 200;  // newest first, at most this many of each
};

// "2h", "3d", "90m", "45s" ago, or a UTC date/time "2026-11-25", "2026-11-25T10:00[:00]".
Result<std::int64_t> parse_since(const std::string& text, std::int64_t now);

Result<nlohmann::json> collect_log(Database& db, const LogQuery& query);
std::string render_log_text(const nlohmann::json& log, bool runs);
Result<nlohmann::json> collect_stats(Database& db, std::int64_t days);
std::string render_stats_text(const nlohmann::json& stats);
Result<nlohmann::json> collect_queue(Database& db);
std::string render_queue_text(const nlohmann::json& queue);

// "2026-11-25T10:00:00Z"; "" for 0.
std::string utc_time(std::int64_t seconds);

}  // namespace sqlpost
