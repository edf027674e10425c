#include "agent/alerts.h"

#include <algorithm>
#include <sstream>

#include "agent/atomic_file.h"
#include "agent/history.h"
#include "agent/params.h"
#include "replication/changelog.h"
#include "replication/conflicts.h"
#include "replication/health.h"
#include "replication/restore.h"
#include "replication/retention.h"
#include "schema/metadata.h"

namespace sqlpost {
namespace {

std::string duration_text(std::int64_t seconds) {
  if (seconds >= 86400) {
    return std::to_string(seconds / 86400) + "d " + std::to_string(seconds % 86400 / 3600) + "h";
  }
  if (seconds >= 3600) {
    return std::to_string(seconds / 3600) + "h " + std::to_string(seconds % 3600 / 60) + "m";
  }
  return std::to_string(seconds / 60) + "m " + std::to_string(seconds % 60) + "s";
}

Result<> silent_partners(Database& db, std::int64_t now, std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const std::int64_t after,
                     int_parameter(db, "alert.silent", kDefaultAlertAfter));
  if (after <= 0) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT p.name, ifnull(s.last_received_at, 0), p.created_at FROM "
                                "sqlpost_sites p LEFT JOIN sqlpost_streams s ON s.site = p.name "
                                "ORDER BY p.name"));
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return success();
    }
    const std::int64_t last = st.column_int(1);
    const std::int64_t since = last > 0 ? last : st.column_int(2);
    if (now - since > after) {
      alerts.push_back({"silent", st.column_text(0), since,
                        st.column_text(0) + " has sent nothing for " + duration_text(now - since) +
                            (last > 0 ? " (last mail " + utc_time(last) + ")" : " (never)") +
                            "; alert.silent=" + std::to_string(after)});
    }
  }
}

Result<> unacknowledged(Database& db, std::int64_t now, std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const std::int64_t after,
                     int_parameter(db, "alert.unacknowledged", kDefaultAlertAfter));
  if (after <= 0) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT site, min(created_at), count(DISTINCT seq), min(seq) FROM "
                                "sqlpost_outbox GROUP BY site HAVING min(created_at) < ? ORDER "
                                "BY site"));
  st.bind(1, now - after);
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return success();
    }
    const std::int64_t since = st.column_int(1);
    alerts.push_back({"unacknowledged", st.column_text(0), since,
                      std::to_string(st.column_int(2)) + " message(s) to " + st.column_text(0) +
                          " unacknowledged, the oldest (#" + std::to_string(st.column_int(3)) +
                          ") for " + duration_text(now - since) +
                          "; alert.unacknowledged=" + std::to_string(after)});
  }
}

Result<> stopped_streams(Database& db, std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const auto enabled, get_config(db, "alert.stopped"));
  if (enabled == "no") {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT site, halted FROM sqlpost_streams WHERE "
                                              "halted IS NOT NULL ORDER BY site"));
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return success();
    }
    alerts.push_back(
        {"stopped", st.column_text(0), 0,
         "applying messages from " + st.column_text(0) + " stopped: " + st.column_text(1)});
  }
}

// A site below this one reported a stopped stream in its last message upward.
Result<> stopped_below(Database& db, std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const auto enabled, get_config(db, "alert.stopped"));
  if (enabled == "no") {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto below, load_hierarchy(db));
  for (const auto& [h, received_at] : below) {
    for (const auto& [partner, why] : h.halted) {
      std::string text = "at " + h.site + " (via " + h.via + "), applying messages from ";
      text.append(partner).append(" stopped: ").append(why);
      alerts.push_back({"stopped_below", h.site, h.reported_at, std::move(text)});
    }
  }
  return success();
}

// A site restored from a backup older than its partner's change log (docs/protocol.md):
// only re-extraction brings it back. Shown on both sides; switched with alert.stopped.
Result<> reextract_needed(Database& db, std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const auto enabled, get_config(db, "alert.stopped"));
  if (enabled == "no") {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT site, recovery FROM sqlpost_streams WHERE "
                                              "recovery IS NOT NULL AND (recovery_ack IS NULL OR "
                                              "recovery_ack = ?) ORDER BY site"));
  st.bind(1, kThisSiteNeedsExtract);
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return success();
    }
    alerts.push_back({"re-extract", st.column_text(0), 0, st.column_text(1)});
  }
}

// Alerts for events recorded in the last `parameter` seconds: `sql` returns per
// partner the count, the first time and the newest detail (?1: the window start);
// `describe` words one alert from them.
struct RecentEvents {
  const char* kind;
  const char* parameter;
  const char* sql;
  std::string (*describe)(const std::string& partner, std::int64_t count, const std::string& window,
                          const std::string& newest);
};

Result<> recent_events(Database& db, std::int64_t now, const RecentEvents& events,
                       std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const std::int64_t window,
                     int_parameter(db, events.parameter, kDefaultAlertAfter));
  if (window <= 0) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare(events.sql));
  st.bind(1, now - window);
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return success();
    }
    const std::string partner = st.column_text(0);
    alerts.push_back(
        {events.kind, partner, st.column_int(2),
         events.describe(partner, st.column_int(1), duration_text(window), st.column_text(3))});
  }
}

const RecentEvents kRejectedMail{
    "rejected", "alert.rejected",
    "SELECT CASE WHEN r.claimed_sender IN (SELECT name FROM sqlpost_sites) THEN r.claimed_sender "
    "ELSE '' END AS partner, count(*), min(received_at), (SELECT reason FROM sqlpost_rejected n "
    "WHERE n.received_at >= ?1 ORDER BY id DESC LIMIT 1) FROM sqlpost_rejected r WHERE "
    "received_at >= ?1 GROUP BY partner ORDER BY partner",
    [](const std::string& partner, std::int64_t count, const std::string& window,
       const std::string& newest) {
      return std::to_string(count) + " mail(s)" +
             (partner.empty() ? "" : " claiming to be from " + partner) + " rejected in the last " +
             window + " (newest: " + newest + "; sqlpost queue DB)";
    }};

const RecentEvents kBouncedMail{
    "bounced", "alert.bounced",
    "SELECT site, count(*), min(received_at), (SELECT status || ' ' || diagnostic FROM "
    "sqlpost_bounces n WHERE n.site = b.site AND n.received_at >= ?1 ORDER BY id DESC LIMIT 1) "
    "FROM sqlpost_bounces b WHERE received_at >= ?1 GROUP BY site ORDER BY site",
    [](const std::string& partner, std::int64_t count, const std::string& window,
       const std::string& newest) {
      return std::to_string(count) + " part(s) to " + partner + " bounced in the last " + window +
             " (newest: " + newest + "; sqlpost status DB)";
    }};

Result<std::string> pruning_wait_text(Database& db) {
  SQLPOST_TRY_ASSIGN(const LogHolder holder, oldest_log_holder(db));
  SQLPOST_TRY_ASSIGN(const std::int64_t closed, last_closed_epoch(db));
  if (holder.site.empty() || holder.needed_from >= closed) {  // no partner holds it back
    return std::string("it is kept for log_retention");
  }
  return "pruning waits for site " + holder.site + " to acknowledge what it was sent from epoch " +
         std::to_string(holder.needed_from) + " on";
}

// The change log grows while a partner does not acknowledge (it is pruned only
// behind every partner): its row count is read from the ends of its key, so the
// check costs nothing whatever the size.
Result<> large_change_log(Database& db, std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const std::int64_t limit,
                     int_parameter(db, "alert.log_rows", kDefaultAlertLogRows));
  if (limit <= 0) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t rows,
                     db.query_int("SELECT ifnull(max(seq) - min(seq) + 1, 0) FROM sqlpost_log"));
  if (rows < limit) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t used,
                     db.query_int("SELECT (SELECT page_count FROM pragma_page_count) - (SELECT "
                                  "freelist_count FROM pragma_freelist_count)"));
  SQLPOST_TRY_ASSIGN(const std::int64_t page,
                     db.query_int("SELECT page_size FROM pragma_page_size"));
  SQLPOST_TRY_ASSIGN(const std::string why, pruning_wait_text(db));
  alerts.push_back({"log_size", "", 0,
                    "the change log keeps about " + std::to_string(rows) +
                        " changes (alert.log_rows=" + std::to_string(limit) +
                        "; the database uses " + std::to_string(used * page >> 20) +
                        " MiB): " + why});
  return success();
}

// Prometheus label value: backslash, quote and newline escaped.
std::string label(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// One sqlpost_alert series per partner and kind: "rejected" also for mail of no
// known partner (partner ""), "log_size" only for the site, "stopped_below" for each
// site below that reported its health (`below`), so that it reads 0 once cleared.
std::string alert_series(const std::string& s, const std::vector<Alert>& alerts,
                         const std::vector<Partner>& partners,
                         const std::vector<StoredHealth>& below) {
  const auto active = [&](const std::string& kind, const std::string& partner) {
    return std::ranges::any_of(
               alerts, [&](const Alert& a) { return a.kind == kind && a.partner == partner; })
               ? 1
               : 0;
  };
  std::vector<std::string> names{""};
  for (const auto& p : partners) {
    names.push_back(p.name);
  }
  const std::vector<std::pair<std::string, bool>> kinds = {
      {"silent", false},  {"unacknowledged", false}, {"stopped", false}, {"re-extract", false},
      {"rejected", true}, {"bounced", false},        {"log_size", true}};
  std::ostringstream out;
  const auto series = [&](const std::string& name, const std::string& kind) {
    out << "sqlpost_alert{" << s << ",partner=\"" << label(name) << "\",kind=\"" << kind << "\"} "
        << active(kind, name) << "\n";
  };
  for (const auto& name : names) {
    for (const auto& [kind, site_wide] : kinds) {
      if (name.empty() == site_wide || kind == "rejected") {
        series(name, kind);
      }
    }
  }
  for (const auto& [h, received_at] : below) {
    series(h.site, "stopped_below");
  }
  return out.str();
}

Result<std::string> metrics_text(Database& db, std::int64_t now, int last_exit_code,
                                 const std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  const std::string s = "site=\"" + label(site.name) + "\"";
  std::ostringstream out;
  const auto metric = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  metric("sqlpost_last_run_timestamp_seconds", "gauge", "When the last pass ended.");
  out << "sqlpost_last_run_timestamp_seconds{" << s << "} " << now << "\n";
  metric("sqlpost_last_run_exit_code", "gauge", "Exit code of the last pass (see sqlpost(1)).");
  out << "sqlpost_last_run_exit_code{" << s << "} " << last_exit_code << "\n";
  metric("sqlpost_alerts", "gauge", "Alerts in force.");
  out << "sqlpost_alerts{" << s << "} " << alerts.size() << "\n";
  metric("sqlpost_alert", "gauge", "1 while an alert of this kind is in force for the partner.");
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  SQLPOST_TRY_ASSIGN(const auto below, load_hierarchy(db));
  out << alert_series(s, alerts, partners, below);
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("SELECT p.name, ifnull(s.last_received_at, 0), ifnull(s.last_sent_at, 0), (SELECT "
                 "count(DISTINCT seq) FROM sqlpost_outbox o WHERE o.site = p.name), ifnull((SELECT "
                 "? - min(created_at) FROM sqlpost_outbox o WHERE o.site = p.name), 0), (SELECT "
                 "count(*) FROM sqlpost_inbox i WHERE i.site = p.name), ifnull(s.rejected, 0) "
                 "FROM sqlpost_sites p LEFT JOIN sqlpost_streams s ON s.site = p.name ORDER BY "
                 "p.name"));
  st.bind(1, now);
  const std::vector<std::pair<const char*, const char*>> per_partner = {
      {"sqlpost_partner_last_received_timestamp_seconds", "Last mail from the partner (0: never)."},
      {"sqlpost_partner_last_sent_timestamp_seconds", "Last mail to the partner (0: never)."},
      {"sqlpost_partner_outbox_messages", "Messages to the partner not yet acknowledged."},
      {"sqlpost_partner_outbox_oldest_age_seconds", "Age of the oldest unacknowledged message."},
      {"sqlpost_partner_inbox_parts", "Parts from the partner stored, not yet applied."},
      {"sqlpost_partner_rejected_total", "Mail claiming to be from the partner, rejected."},
  };
  std::vector<std::ostringstream> series(per_partner.size());
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    for (std::size_t i = 0; i < per_partner.size(); ++i) {
      series[i] << per_partner[i].first << "{" << s << ",partner=\"" << label(st.column_text(0))
                << "\"} " << st.column_int(static_cast<int>(i) + 1) << "\n";
    }
  }
  for (std::size_t i = 0; i < per_partner.size(); ++i) {
    const bool counter = std::string(per_partner[i].first).ends_with("_total");
    metric(per_partner[i].first, counter ? "counter" : "gauge", per_partner[i].second);
    out << series[i].str();
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t rejected,
                     db.query_int("SELECT count(*) FROM sqlpost_rejected"));
  metric("sqlpost_rejected_mail", "gauge", "Rejected mail kept in sqlpost_rejected.");
  out << "sqlpost_rejected_mail{" << s << "} " << rejected << "\n";
  SQLPOST_TRY_ASSIGN(const std::int64_t conflicts, count_conflicts(db));
  metric("sqlpost_conflicts", "gauge", "Conflicts recorded (sqlpost conflicts DB).");
  out << "sqlpost_conflicts{" << s << "} " << conflicts << "\n";
  return out.str();
}

}  // namespace

Result<std::vector<Alert>> evaluate_alerts(Database& db, std::int64_t now) {
  std::vector<Alert> alerts;
  SQLPOST_TRY(silent_partners(db, now, alerts));
  SQLPOST_TRY(unacknowledged(db, now, alerts));
  SQLPOST_TRY(stopped_streams(db, alerts));
  SQLPOST_TRY(stopped_below(db, alerts));
  SQLPOST_TRY(reextract_needed(db, alerts));
  SQLPOST_TRY(recent_events(db, now, kRejectedMail, alerts));
  SQLPOST_TRY(recent_events(db, now, kBouncedMail, alerts));
  SQLPOST_TRY(large_change_log(db, alerts));
  return alerts;
}

nlohmann::json alerts_json(const std::vector<Alert>& alerts) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : alerts) {
    out.push_back({{"kind", a.kind},
                   {"partner", a.partner},
                   {"since", a.since},
                   {"since_utc", utc_time(a.since)},
                   {"text", a.text}});
  }
  return out;
}

std::string render_alerts_text(const nlohmann::json& alerts) {
  if (alerts.empty()) {
    return "alerts: none\n";
  }
  std::string out = "alerts: " + std::to_string(alerts.size()) + "\n";
  for (const auto& a : alerts) {
    out += "  ALERT " + a["kind"].get<std::string>() + ": " + a["text"].get<std::string>() + "\n";
  }
  return out;
}

Result<> write_metrics(Database& db, const std::string& file, std::int64_t now, int last_exit_code,
                       const std::vector<Alert>& alerts) {
  SQLPOST_TRY_ASSIGN(const std::string text, metrics_text(db, now, last_exit_code, alerts));
  auto written = replace_file(file, text);
  if (!written.ok()) {
    return make_error(Errc::kIOError, "metrics file: " + written.error().message);
  }
  return success();
}

}  // namespace sqlpost
