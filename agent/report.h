// sqlpost/agent/report.h — `sqlpost report DB --html FILE`: one self-contained
// HTML page an administrator would rather look at than `status`.
//
// Contract: render_report_html() reads the site (never writes): what `status`
// collects (agent/status.h: partners, delivery, alerts, the sites below as
// their health reports told it) and the statistics of the last `days` UTC days
// (sqlpost_stats, agent/history.h). The page lists every site of the hierarchy
// with its state, when it was last heard of, its lag and its backlog, coloured
// by trouble (stopped streams, re-extraction, alerts, silent sites,
// conflicts), and draws per partner two small inline SVG bar charts:
// messages per day each way and the acknowledgement lag per day.
//
// SECURITY: site names, reasons, versions and statistics' partner names come
// from partners (a child's health report names sites nobody here checked):
// every text from the database is HTML-escaped, and the page carries a
// Content-Security-Policy that allows no script, no network access and no
// external asset at all (inline CSS and SVG only), so it also works offline
// and from a mail attachment.
//
// write_report() renders the page and replaces FILE atomically
// (agent/atomic_file.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "schema/db.h"

namespace sqlpost {

inline constexpr std::int64_t kDefaultReportDays = 14;
inline constexpr std::int64_t kMaxReportDays = 400;  // the default stats_retention

// `text` with &, <, >, " and ' replaced by entities, and control characters
// other than tab and newline replaced by U+FFFD: safe in element content and
// in quoted attribute values.
std::string html_escape(std::string_view text);

// `now` is seconds since the epoch; `days` is 1..kMaxReportDays.
Result<std::string> render_report_html(Database& db, std::int64_t now, std::int64_t days);

Result<> write_report(Database& db, const std::string& file, std::int64_t now, std::int64_t days);

}  // namespace sqlpost
