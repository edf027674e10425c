#include "agent/report.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <ctime>
#include <functional>
#include <map>
#include <sstream>
#include <vector>

#include "agent/alerts.h"
#include "agent/atomic_file.h"
#include "agent/history.h"
#include "agent/params.h"
#include "agent/status.h"
#include "agent/version.h"
#include "platform/process.h"

namespace sqlpost {
namespace {

using nlohmann::json;

// ---- facts: what the page shows, gathered before any HTML is written

enum class Level { kOk, kWarn, kBad };

struct SiteRow {
  std::string name;
  std::string relation;  // "this site", "parent", "child", "below NAME"
  bool nested = false;   // a site below a child: indented under it
  Level level = Level::kOk;
  std::string state = "ok";
  std::string heard = "-";    // when it was last heard of
  std::string lag = "-";      // acknowledgement lag, or the age of its report
  std::string backlog = "-";  // what waits to be sent, acknowledged or applied
  std::int64_t conflicts = 0;
  std::int64_t rejected = 0;
  std::string version;
  std::vector<std::string> notes;  // why it is not ok
};

struct DayStats {
  std::string day;  // YYYY-MM-DD (UTC)
  std::string partner;
  std::int64_t messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0;
  std::int64_t rows_in = 0, rows_out = 0, conflicts = 0, lag_max = 0, lag_avg = 0, lag_count = 0;
};

// Keeps the worst state seen: the first reason of the worst level names the row's state.
void raise(SiteRow& row, Level level, const std::string& state, const std::string& note) {
  if (level > row.level) {
    row.level = level;
    row.state = state;
  }
  if (!note.empty()) {
    row.notes.push_back(note);
  }
}

std::string duration_text(std::int64_t seconds) {
  seconds = std::max<std::int64_t>(seconds, 0);
  if (seconds >= 86400) {
    return std::to_string(seconds / 86400) + "d " + std::to_string(seconds % 86400 / 3600) + "h";
  }
  if (seconds >= 3600) {
    return std::to_string(seconds / 3600) + "h " + std::to_string(seconds % 3600 / 60) + "m";
  }
  if (seconds >= 60) {
    return std::to_string(seconds / 60) + "m " + std::to_string(seconds % 60) + "s";
  }
  return std::to_string(seconds) + "s";
}

std::string ago_text(std::int64_t at, std::int64_t now) {
  return at == 0 ? "never" : duration_text(now - at) + " ago";
}

std::string bytes_text(std::int64_t bytes) {
  constexpr std::array<const char*, 4> kUnits = {"B", "KiB", "MiB", "GiB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  std::ostringstream out;
  out.precision(unit == 0 ? 0 : 1);
  out << std::fixed << value << " " << kUnits.at(unit);
  return out.str();
}

std::string utc_day(std::int64_t seconds) {
  const std::tm tm = platform::utc_time(static_cast<std::time_t>(seconds));
  std::array<char, 16> buf{};
  (void)std::strftime(buf.data(), buf.size(), "%Y-%m-%d", &tm);
  return buf.data();
}

std::vector<std::string> last_days(std::int64_t now, std::int64_t days) {
  std::vector<std::string> out;
  for (std::int64_t back = days - 1; back >= 0; --back) {
    out.push_back(utc_day(now - back * 86400));
  }
  return out;
}

// Everything the page shows, read in gather(); filled in place, never copied.
struct Facts {
  Facts(std::int64_t at, std::int64_t n_days) : days(last_days(at, n_days)), now(at) {}
  json status;
  std::vector<DayStats> stats;
  std::vector<std::string> days;  // oldest first, the last is today
  std::int64_t now = 0;
  std::int64_t silent_after = 0;
};

Result<std::vector<DayStats>> load_stats(Database& db, const std::string& first_day) {
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("SELECT day, partner, messages_in, messages_out, bytes_in, bytes_out, rows_in, "
                 "rows_out, conflicts, lag_max, CASE WHEN lag_count > 0 THEN lag_sum / lag_count "
                 "ELSE 0 END, lag_count FROM sqlpost_stats WHERE day >= ? ORDER BY day, partner"));
  st.bind(1, first_day);
  return st.rows([](const Statement& r) {
    DayStats d;
    d.day = r.column_text(0);
    d.partner = r.column_text(1);
    d.messages_in = r.column_int(2);
    d.messages_out = r.column_int(3);
    d.bytes_in = r.column_int(4);
    d.bytes_out = r.column_int(5);
    d.rows_in = r.column_int(6);
    d.rows_out = r.column_int(7);
    d.conflicts = r.column_int(8);
    d.lag_max = r.column_int(9);
    d.lag_avg = r.column_int(10);
    d.lag_count = r.column_int(11);
    return d;
  });
}

Result<> gather(Database& db, Facts& f) {
  SQLPOST_TRY_ASSIGN(f.status, collect_status(db));
  SQLPOST_TRY_ASSIGN(f.stats, load_stats(db, f.days.front()));
  SQLPOST_TRY_ASSIGN(f.silent_after, int_parameter(db, "alert.silent", kDefaultAlertAfter));
  return success();
}

// ---- rows of the sites table

Level alert_level(const std::string& kind) {
  return kind == "stopped" || kind == "stopped_below" || kind == "re-extract" ? Level::kBad
                                                                              : Level::kWarn;
}

// The alerts about a partner that its delivery state and health do not show already
// (stopped streams and restores are read from those, with their reasons).
void apply_alerts(SiteRow& row, const json& alerts, const std::string& partner) {
  for (const auto& a : alerts) {
    const auto kind = a["kind"].get<std::string>();
    if (a["partner"].get<std::string>() == partner &&
        (kind == "silent" || kind == "unacknowledged" || kind == "rejected")) {
      raise(row, alert_level(kind), kind, "ALERT " + kind + ": " + a["text"].get<std::string>());
    }
  }
}

SiteRow local_row(const Facts& f) {
  const json& s = f.status;
  SiteRow row;
  row.name = s["site"].get<std::string>();
  row.relation = "this site (" + s["role"].get<std::string>() + ")";
  row.heard = "now";
  row.backlog = std::to_string(s["log_rows"].get<std::int64_t>()) + " change(s) in the log";
  row.conflicts = s["conflicts"].get<std::int64_t>();
  row.rejected = s["rejected_mail"].get<std::int64_t>();
  row.version = kVersion;
  apply_alerts(row, s["alerts"], "");
  return row;
}

// The newest day's average acknowledgement lag of a partner, if any was measured.
std::string latest_lag(const Facts& f, const std::string& partner) {
  for (auto d = f.stats.rbegin(); d != f.stats.rend(); ++d) {
    if (d->partner == partner && d->lag_count > 0) {
      return duration_text(d->lag_avg) + (d->day == f.days.back() ? " today" : " on " + d->day);
    }
  }
  return "-";
}

std::int64_t recent_conflicts(const Facts& f, const std::string& partner) {
  std::int64_t n = 0;
  for (const auto& d : f.stats) {
    n += d.partner == partner ? d.conflicts : 0;
  }
  return n;
}

std::string partner_backlog(const json& p) {
  const auto unsent = p["unsent_changes"].get<std::int64_t>();
  std::int64_t outbox = 0;
  std::int64_t inbox = 0;
  if (p.contains("delivery")) {
    outbox = p["delivery"]["outbox_messages"].get<std::int64_t>();
    inbox = p["delivery"]["inbox_parts"].get<std::int64_t>();
  }
  std::vector<std::string> parts;
  if (unsent > 0) {
    parts.push_back(std::to_string(unsent) + " unsent change(s)");
  }
  if (outbox > 0) {
    parts.push_back(std::to_string(outbox) + " unacknowledged message(s)");
  }
  if (inbox > 0) {
    parts.push_back(std::to_string(inbox) + " part(s) to apply");
  }
  std::string text = parts.empty() ? "none" : parts.front();
  for (std::size_t i = 1; i < parts.size(); ++i) {
    text += ", " + parts[i];
  }
  return text;
}

void apply_delivery(SiteRow& row, const json& delivery, std::int64_t now) {
  row.heard = ago_text(delivery["last_received_at"].get<std::int64_t>(), now);
  row.rejected = delivery["rejected"].get<std::int64_t>();
  const auto halted = delivery["halted"].get<std::string>();
  if (!halted.empty()) {
    raise(row, Level::kBad, "stopped", "applying its messages stopped: " + halted);
  }
  if (delivery.contains("recovery")) {
    const auto state = delivery["recovery"]["state"].get<std::string>();
    if (state != "done") {
      raise(row, state == "re-extract" ? Level::kBad : Level::kWarn, state,
            "restore: " + delivery["recovery"]["detail"].get<std::string>());
    }
  }
}

// What a site reported about itself in its last message upward.
void apply_health(SiteRow& row, const json& health, const Facts& f) {
  row.version = health["version"].get<std::string>();
  row.conflicts = std::max(row.conflicts, health["conflicts"].get<std::int64_t>());
  for (const auto& h : health["halted"]) {
    raise(row, Level::kBad, "stopped",
          "its stream from " + h["partner"].get<std::string>() +
              " stopped: " + h["why"].get<std::string>());
  }
  if (f.silent_after > 0 && f.now - health["received_at"].get<std::int64_t>() > f.silent_after) {
    raise(row, Level::kWarn, "silent",
          "no report for " + duration_text(f.now - health["received_at"].get<std::int64_t>()));
  }
}

SiteRow partner_row(const json& p, const Facts& f) {
  SiteRow row;
  row.name = p["name"].get<std::string>();
  row.relation = p["relation"].get<std::string>();
  row.heard = "never";
  row.lag = latest_lag(f, row.name);
  row.backlog = partner_backlog(p);
  if (p.contains("delivery")) {
    apply_delivery(row, p["delivery"], f.now);
  }
  row.conflicts = recent_conflicts(f, row.name);
  for (const auto& h : f.status["hierarchy"]) {
    if (h["site"] == row.name && h["via"] == row.name) {
      apply_health(row, h, f);
    }
  }
  apply_alerts(row, f.status["alerts"], row.name);
  if (row.conflicts > 0) {
    raise(row, Level::kWarn, "conflicts", "");
  }
  return row;
}

SiteRow below_row(const json& h, const Facts& f) {
  SiteRow row;
  row.name = h["site"].get<std::string>();
  row.relation = "below " + h["via"].get<std::string>();
  row.nested = true;
  const auto reported = h["reported_at"].get<std::int64_t>();
  row.heard = "reported " + ago_text(h["received_at"].get<std::int64_t>(), f.now);
  row.lag = "report " + duration_text(f.now - reported) + " old";
  const auto oldest = h["outbox_oldest"].get<std::int64_t>();
  row.backlog = oldest > 0
                    ? "its oldest unacknowledged part " + duration_text(reported - oldest) + " old"
                    : "none reported";
  row.rejected = h["rejected"].get<std::int64_t>();
  apply_health(row, h, f);
  apply_alerts(row, f.status["alerts"], row.name);
  if (row.conflicts > 0) {
    raise(row, Level::kWarn, "conflicts", "");
  }
  return row;
}

// This site, its parent, then each child followed by the sites below it.
std::vector<SiteRow> site_rows(const Facts& f) {
  std::vector<SiteRow> rows{local_row(f)};
  for (const auto& p : f.status["partners"]) {
    rows.push_back(partner_row(p, f));
    for (const auto& h : f.status["hierarchy"]) {
      if (h["via"] == p["name"] && h["site"] != p["name"]) {
        rows.push_back(below_row(h, f));
      }
    }
  }
  return rows;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
          out += "\xEF\xBF\xBD";  // U+FFFD
        } else {
          out += c;
        }
    }
  }
  return out;
}

namespace {

// ---- HTML

const char* level_class(Level level) {
  switch (level) {
    case Level::kBad: return "bad";
    case Level::kWarn: return "warn";
    case Level::kOk: break;
  }
  return "ok";
}

constexpr const char* kStyle = R"(
:root{--ok:#1a7f37;--warn:#bc4c00;--bad:#cf222e;--muted:#57606a;--line:#d0d7de}
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;
 font:14px/1.45 system-ui,"Segoe UI",Roboto,"DejaVu Sans","Liberation Sans",sans-serif}
header{background:#24292f;color:#fff;padding:16px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#c9d1d9;font-size:13px}
main{padding:20px 28px;max-width:1400px}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:18px}
.tile{background:#fff;border:1px solid var(--line);border-left:6px solid var(--ok);
 border-radius:6px;padding:8px 16px;min-width:150px}
.tile b{display:block;font-size:24px}
.tile span{color:var(--muted);font-size:12px}
.tile.warn{border-left-color:var(--warn)}.tile.bad{border-left-color:var(--bad)}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 16px;
 margin-bottom:18px}
h2{font-size:16px;margin:0 0 10px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.name{font-weight:600;word-break:break-all;min-width:110px}
td.nested{padding-left:28px}
td.nested::before{content:"\2514\00a0";color:var(--muted);font-weight:400}
tr.warn{background:#fff8e5}tr.bad{background:#ffebe9}
tr.warn td:first-child{box-shadow:inset 4px 0 var(--warn)}
tr.bad td:first-child{box-shadow:inset 4px 0 var(--bad)}
.state{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600;
 color:#fff;background:var(--ok);white-space:nowrap}
.state.warn{background:var(--warn)}.state.bad{background:var(--bad)}
.note{color:#6e4c00;font-size:12px;margin-top:3px;word-break:break-word}
tr.bad .note{color:#82071e}
.hot{color:var(--warn);font-weight:600}
ul.alerts{margin:0;padding-left:20px}ul.alerts li{margin:2px 0;word-break:break-word}
ul.alerts li.bad{color:var(--bad)}ul.alerts li.warn{color:var(--warn)}
p.none{color:var(--ok);margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
.partner{border:1px solid #eaeef2;border-radius:6px;padding:8px 10px}
.partner h3{font-size:14px;margin:0 0 6px;word-break:break-all}
.chart{margin-bottom:6px}.chart h4{font-size:12px;font-weight:600;margin:0;color:var(--muted)}
svg{display:block;width:100%;max-width:540px;height:auto}svg text{font-size:10px;fill:#57606a}
svg .grid{stroke:#eaeef2}svg .axis{stroke:#8c959f}
.s0{fill:#0969da;background:#0969da}.s1{fill:#8250df;background:#8250df}
.s2{fill:#bc4c00;background:#bc4c00}.s3{fill:#e3a008;background:#e3a008}
.legend{font-size:11px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:-1px}
footer{color:var(--muted);font-size:12px;padding:0 28px 24px}
)";

std::string page_start(const Facts& f) {
  const std::string site = html_escape(f.status["site"].get<std::string>());
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "style-src 'unsafe-inline'\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<meta name='generator' content='sqlpost " << html_escape(kVersion) << "'>\n"
      << "<title>sqlpost report: " << site << "</title>\n<style>" << kStyle << "</style>\n"
      << "</head>\n<body>\n<header><h1>sqlpost report: " << site << "</h1><p>"
      << html_escape(f.status["role"].get<std::string>()) << " site &lt;"
      << html_escape(f.status["address"].get<std::string>()) << "&gt; &middot; generated "
      << html_escape(utc_time(f.now)) << " &middot; statistics of the last " << f.days.size()
      << " UTC day(s)</p></header>\n<main>\n";
  return out.str();
}

std::string tile(Level level, std::int64_t value, const std::string& label) {
  return std::string("<div class=\"tile ") + level_class(level) + "\"><b>" + std::to_string(value) +
         "</b><span>" + label + "</span></div>";
}

std::string summary_html(const std::vector<SiteRow>& rows, const json& alerts) {
  std::int64_t bad = 0;
  std::int64_t warn = 0;
  for (const auto& r : rows) {
    bad += r.level == Level::kBad ? 1 : 0;
    warn += r.level == Level::kWarn ? 1 : 0;
  }
  const auto n_alerts = static_cast<std::int64_t>(alerts.size());
  std::ostringstream out;
  out << "<div class=\"tiles\">"
      << tile(Level::kOk, static_cast<std::int64_t>(rows.size()), "sites")
      << tile(bad > 0 ? Level::kBad : Level::kOk, bad, "in trouble")
      << tile(warn > 0 ? Level::kWarn : Level::kOk, warn, "to watch")
      << tile(n_alerts > 0 ? Level::kBad : Level::kOk, n_alerts, "alerts in force") << "</div>\n";
  return out.str();
}

std::string alerts_html(const json& alerts) {
  std::ostringstream out;
  out << "<section id=\"alerts\"><h2>Alerts</h2>";
  if (alerts.empty()) {
    out << "<p class=\"none\">No alert in force.</p>";
  } else {
    out << "<ul class=\"alerts\">";
    for (const auto& a : alerts) {
      const auto kind = a["kind"].get<std::string>();
      out << "<li class=\"" << level_class(alert_level(kind)) << "\"><b>" << html_escape(kind)
          << "</b> " << html_escape(a["partner"].get<std::string>()) << ": "
          << html_escape(a["text"].get<std::string>()) << "</li>";
    }
    out << "</ul>";
  }
  out << "</section>\n";
  return out.str();
}

std::string count_cell(std::int64_t n) {
  return std::string("<td class=\"num") + (n > 0 ? " hot" : "") + "\">" + std::to_string(n) +
         "</td>";
}

std::string site_row_html(const SiteRow& r) {
  const char* level = level_class(r.level);
  std::ostringstream out;
  out << "<tr class=\"" << level << "\"><td class=\"name" << (r.nested ? " nested" : "") << "\">"
      << html_escape(r.name) << "</td><td>" << html_escape(r.relation)
      << "</td><td><span class=\"state " << level << "\">" << html_escape(r.state) << "</span>";
  for (const auto& note : r.notes) {
    out << "<div class=\"note\">" << html_escape(note) << "</div>";
  }
  out << "</td><td>" << html_escape(r.heard) << "</td><td>" << html_escape(r.lag) << "</td><td>"
      << html_escape(r.backlog) << "</td>" << count_cell(r.conflicts) << count_cell(r.rejected)
      << "<td>" << html_escape(r.version) << "</td></tr>\n";
  return out.str();
}

std::string sites_html(const std::vector<SiteRow>& rows) {
  std::ostringstream out;
  out << "<section id=\"sites\"><h2>Sites</h2><table>\n<thead><tr><th>site</th><th>relation</th>"
         "<th>state</th><th>last heard of</th><th>lag</th><th>backlog</th><th>conflicts</th>"
         "<th>rejected</th><th>version</th></tr></thead>\n<tbody>\n";
  for (const auto& r : rows) {
    out << site_row_html(r);
  }
  out << "</tbody></table></section>\n";
  return out.str();
}

// ---- charts: inline SVG bars, one group per day

struct Series {
  std::string name;
  std::string css_class;             // its colour: s0..s3 in kStyle
  std::vector<std::int64_t> values;  // one per day
};

using Format = std::function<std::string(std::int64_t)>;

constexpr int kChartWidth = 360;
constexpr int kChartHeight = 110;
constexpr int kLeft = 48;
constexpr int kRight = 6;
constexpr int kTop = 8;
constexpr int kBottom = 18;

std::string chart_frame(const std::vector<std::string>& days, std::int64_t top,
                        const Format& format) {
  constexpr int kPlotBottom = kChartHeight - kBottom;
  std::ostringstream out;
  for (const int y : {kTop, (kTop + kPlotBottom) / 2}) {
    out << "<line class='grid' x1='" << kLeft << "' y1='" << y << "' x2='" << kChartWidth - kRight
        << "' y2='" << y << "'/>";
  }
  out << "<line class='axis' x1='" << kLeft << "' y1='" << kPlotBottom << "' x2='"
      << kChartWidth - kRight << "' y2='" << kPlotBottom << "'/>";
  out << "<text x='" << kLeft - 4 << "' y='" << kTop + 4 << "' text-anchor='end'>"
      << html_escape(format(top)) << "</text><text x='" << kLeft - 4 << "' y='" << kPlotBottom
      << "' text-anchor='end'>0</text>";
  out << "<text x='" << kLeft << "' y='" << kChartHeight - 4 << "'>"
      << html_escape(days.front().substr(5)) << "</text><text x='" << kChartWidth - kRight
      << "' y='" << kChartHeight - 4 << "' text-anchor='end'>" << html_escape(days.back().substr(5))
      << "</text>";
  return out.str();
}

std::string chart_bars(const std::vector<std::string>& days, const std::vector<Series>& series,
                       std::int64_t top, const Format& format) {
  constexpr double kPlotWidth = kChartWidth - kLeft - kRight;
  constexpr double kPlotHeight = kChartHeight - kTop - kBottom;
  const double slot = kPlotWidth / static_cast<double>(days.size());
  const double bar = slot * 0.8 / static_cast<double>(series.size());
  std::ostringstream out;
  out.precision(1);
  out << std::fixed;
  for (std::size_t d = 0; d < days.size(); ++d) {
    for (std::size_t s = 0; s < series.size(); ++s) {
      const std::int64_t v = series[s].values[d];
      if (v <= 0) {
        continue;
      }
      const double h =
          std::max(1.0, kPlotHeight * static_cast<double>(v) / static_cast<double>(top));
      out << "<rect class='" << series[s].css_class << "' x='"
          << kLeft + slot * static_cast<double>(d) + slot * 0.1 + bar * static_cast<double>(s)
          << "' y='" << kTop + kPlotHeight - h << "' width='" << bar << "' height='" << h
          << "'><title>" << html_escape(days[d] + " " + series[s].name + ": " + format(v))
          << "</title></rect>";
    }
  }
  return out.str();
}

std::string bar_chart(const std::string& title, const std::vector<std::string>& days,
                      const std::vector<Series>& series, const Format& format) {
  std::int64_t top = 1;
  for (const auto& s : series) {
    for (const auto v : s.values) {
      top = std::max(top, v);
    }
  }
  std::ostringstream out;
  out << "<div class='chart'><h4>" << html_escape(title)
      << "</h4><svg xmlns='http://www.w3.org/2000/svg' width='" << kChartWidth << "' height='"
      << kChartHeight << "' viewBox='0 0 " << kChartWidth << " " << kChartHeight
      << "' role='img' aria-label='" << html_escape(title) << "'>" << chart_frame(days, top, format)
      << chart_bars(days, series, top, format) << "</svg><div class='legend'>";
  for (const auto& s : series) {
    out << "<i class='" << s.css_class << "'></i>" << html_escape(s.name);
  }
  out << "</div></div>";
  return out.str();
}

// One series per field, zero for the days without a row.
struct Field {
  std::string name;
  std::string css_class;
  std::int64_t DayStats::*member;
};

std::vector<Series> per_day(const Facts& f, const std::string& partner,
                            const std::vector<Field>& fields) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < f.days.size(); ++i) {
    index[f.days[i]] = i;
  }
  std::vector<Series> out;
  for (const auto& field : fields) {
    Series s{field.name, field.css_class, std::vector<std::int64_t>(f.days.size(), 0)};
    for (const auto& d : f.stats) {
      const auto at = index.find(d.day);
      if (d.partner == partner && at != index.end()) {
        s.values[at->second] = d.*field.member;
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string partner_charts(const Facts& f, const std::string& partner) {
  const Format count = [](std::int64_t v) { return std::to_string(v); };
  const Format seconds = [](std::int64_t v) { return duration_text(v); };
  std::ostringstream out;
  out << "<div class=\"partner\"><h3>" << html_escape(partner) << "</h3>"
      << bar_chart("messages per day", f.days,
                   per_day(f, partner,
                           {{"received", "s0", &DayStats::messages_in},
                            {"sent", "s1", &DayStats::messages_out}}),
                   count)
      << bar_chart(
             "acknowledgement lag per day", f.days,
             per_day(f, partner,
                     {{"max", "s2", &DayStats::lag_max}, {"average", "s3", &DayStats::lag_avg}}),
             seconds);
  std::int64_t bytes_in = 0;
  std::int64_t bytes_out = 0;
  for (const auto& d : f.stats) {
    bytes_in += d.partner == partner ? d.bytes_in : 0;
    bytes_out += d.partner == partner ? d.bytes_out : 0;
  }
  out << "<div class=\"legend\">" << html_escape(bytes_text(bytes_in)) << " received, "
      << html_escape(bytes_text(bytes_out)) << " sent in " << f.days.size()
      << " day(s)</div></div>";
  return out.str();
}

std::string charts_html(const Facts& f) {
  std::ostringstream out;
  out << "<section id=\"traffic\"><h2>Traffic and lag per partner</h2>";
  if (f.status["partners"].empty()) {
    out << "<p>No partner.</p>";
  }
  out << "<div class=\"charts\">";
  for (const auto& p : f.status["partners"]) {
    out << partner_charts(f, p["name"].get<std::string>());
  }
  out << "</div></section>\n";
  return out.str();
}

std::string page_end() {
  return std::string("</main>\n<footer>Made by sqlpost ") + html_escape(kVersion) +
         ". Sites below a child are shown as their last message upward reported them; "
         "statistics are per UTC day (sqlpost stats DB). Details: sqlpost status DB, "
         "sqlpost log DB, sqlpost queue DB.</footer>\n</body>\n</html>\n";
}

}  // namespace

Result<std::string> render_report_html(Database& db, std::int64_t now, std::int64_t days) {
  if (days < 1 || days > kMaxReportDays) {
    return make_error(
        Errc::kInvalidArgument,
        "--days must be 1 to " + std::to_string(kMaxReportDays) + ", not " + std::to_string(days));
  }
  Facts f(now, days);
  SQLPOST_TRY(gather(db, f));
  const std::vector<SiteRow> rows = site_rows(f);
  return page_start(f) + summary_html(rows, f.status["alerts"]) + alerts_html(f.status["alerts"]) +
         sites_html(rows) + charts_html(f) + page_end();
}

Result<> write_report(Database& db, const std::string& file, std::int64_t now, std::int64_t days) {
  SQLPOST_TRY_ASSIGN(const std::string html, render_report_html(db, now, days));
  return replace_file(file, html);
}

}  // namespace sqlpost
