#include "agent/status.h"

#include "agent/alerts.h"

#include "replication/conflicts.h"

#include <array>
#include <ctime>
#include <sstream>

#include "platform/process.h"
#include "replication/bookkeeping.h"
#include "replication/changelog.h"
#include "replication/engine.h"
#include "replication/health.h"
#include "replication/rekey.h"
#include "replication/send_schedule.h"
#include "schema/metadata.h"

namespace sqlpost {
namespace {

nlohmann::json article_json(const Article& a) {
  nlohmann::json j{{"table", a.table}, {"conflict", a.conflict}};
  j["columns"] = a.columns.empty() ? nlohmann::json("*") : nlohmann::json(a.columns);
  if (!a.where_expr.empty()) {
    j["where"] = a.where_expr;
  }
  if (!a.subscribe_by.empty()) {
    j["subscribe_by"] = a.subscribe_by;
  }
  return j;
}

Result<nlohmann::json> publications_json(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto names, load_publications(db));
  SQLPOST_TRY_ASSIGN(const auto articles, load_articles(db));
  nlohmann::json pubs = nlohmann::json::array();
  for (const auto& name : names) {
    nlohmann::json arts = nlohmann::json::array();
    for (const auto& a : articles) {
      if (a.publication == name) {
        arts.push_back(article_json(a));
      }
    }
    pubs.push_back({{"name", name}, {"articles", arts}});
  }
  return pubs;
}

std::string local_text(std::int64_t seconds) {
  const std::tm tm = platform::local_time(static_cast<std::time_t>(seconds));
  std::array<char, 48> buf{};
  (void)std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M %Z", &tm);
  return buf.data();
}

// The partner's send schedule and when its next message can be prepared
// (docs/json.md); nothing for a partner sent to at every run.
Result<> add_schedule_json(Database& db, const Partner& p, nlohmann::json& out) {
  if (p.send_schedule.empty()) {
    out["send_schedule"] = "always";
    return success();
  }
  auto schedule = parse_send_schedule(p.send_schedule);
  if (!schedule.ok()) {
    out["send_schedule"] = "invalid: " + p.send_schedule;
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t pending, first_closed_at_after(db, p.sent_epoch));
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  const std::int64_t next = next_send(schedule.value(), pending, now);
  out["send_schedule"] = describe(schedule.value());
  out["send_due"] = send_due(schedule.value(), pending, now);
  out["next_send_at"] = next;
  out["next_send_local"] = local_text(next);
  return success();
}

Result<nlohmann::json> partners_json(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  SQLPOST_TRY_ASSIGN(const auto subs, load_subscriptions(db));
  SQLPOST_TRY_ASSIGN(const auto streams, load_stream_states(db));
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : partners) {
    nlohmann::json subscriptions = nlohmann::json::array();
    for (const auto& s : subs) {
      if (s.site == p.name) {
        subscriptions.push_back({{"publication", s.publication}, {"value", s.value}});
      }
    }
    SQLPOST_TRY_ASSIGN(const std::int64_t unsent, count_unsent_changes(db, p));
    out.push_back({{"name", p.name},
                   {"address", p.address},
                   {"relation", p.relation == Relation::kParent ? "parent" : "child"},
                   {"subscriptions", subscriptions},
                   {"unsent_changes", unsent}});
    SQLPOST_TRY(add_schedule_json(db, p, out.back()));
    SQLPOST_TRY_ASSIGN(const RekeyState rekey, load_rekey_state(db, p.name));
    if (!rekey.state.empty()) {
      out.back()["key_rotation"] = {{"state", rekey.state},
                                    {"started_at", rekey.started_at},
                                    {"switched_at", rekey.switched_at},
                                    {"done_at", rekey.done_at},
                                    {"detail", describe_rekey(rekey)}};
    }
    for (const auto& st : streams) {
      if (st.site == p.name) {
        out.back()["delivery"] = {{"last_sent_seq", st.next_seq - 1},
                                  {"confirmed_seq", st.acked_seq},
                                  {"applied_seq", st.applied_seq},
                                  {"outbox_messages", st.outbox_messages},
                                  {"inbox_parts", st.inbox_parts},
                                  {"rejected", st.rejected},
                                  {"last_sent_at", st.last_sent_at},
                                  {"last_received_at", st.last_received_at},
                                  {"halted", st.halted}};
        if (!st.recovery.empty()) {
          out.back()["delivery"]["recovery"] = {{"state", st.recovery_state},
                                                {"detail", st.recovery}};
        }
      }
    }
  }
  return out;
}

std::string recovery_heading(const std::string& state) {
  if (state == "re-extract") {
    return "NEEDS RE-EXTRACTION";
  }
  if (state == "done") {
    return "RECOVERED";
  }
  if (state == "waiting for the partner") {
    return "DETECTED, waiting for the partner to recover";
  }
  return "RECOVERY IN PROGRESS";
}

std::string time_text(std::int64_t seconds) {
  if (seconds == 0) {
    return "never";
  }
  const std::time_t t = seconds;
  const std::tm tm = platform::utc_time(t);
  std::array<char, 32> buf{};
  (void)std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf.data();
}

}  // namespace

namespace {

// The last bounces (delivery status notifications about our parts), newest first.
Result<nlohmann::json> recent_bounces_json(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT site, seq, part, received_at, action, status, diagnostic, "
                                "resplit_to FROM sqlpost_bounces ORDER BY id DESC LIMIT 10"));
  nlohmann::json bounces = nlohmann::json::array();
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return bounces;
    }
    nlohmann::json b{{"partner", st.column_text(0)},   {"seq", st.column_int(1)},
                     {"part", st.column_int(2)},       {"at", st.column_int(3)},
                     {"action", st.column_text(4)},    {"status", st.column_text(5)},
                     {"diagnostic", st.column_text(6)}};
    if (!st.column_is_null(7)) {
      b["resplit_to"] = st.column_int(7);
    }
    bounces.push_back(std::move(b));
  }
}

// The sites below this one, as their health reports told it (replication/health.h).
Result<nlohmann::json> hierarchy_json(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto below, load_hierarchy(db));
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& [h, received_at] : below) {
    nlohmann::json halted = nlohmann::json::array();
    for (const auto& [partner, why] : h.halted) {
      halted.push_back({{"partner", partner}, {"why", why}});
    }
    sites.push_back({{"site", h.site},
                     {"via", h.via},
                     {"version", h.version},
                     {"reported_at", h.reported_at},
                     {"received_at", received_at},
                     {"conflicts", h.conflicts},
                     {"rejected", h.rejected},
                     {"outbox_oldest", h.outbox_oldest},
                     {"halted", std::move(halted)}});
  }
  return sites;
}

std::string render_hierarchy_text(const nlohmann::json& sites, std::int64_t now) {
  if (sites.empty()) {
    return {};
  }
  std::ostringstream out;
  out << "\nsites below (as their last messages reported):";
  for (const auto& s : sites) {
    const auto reported = s["reported_at"].get<std::int64_t>();
    out << "\n  " << s["site"].get<std::string>();
    if (s["via"].get<std::string>() != s["site"].get<std::string>()) {
      out << " (via " << s["via"].get<std::string>() << ")";
    }
    out << ": reported " << time_text(reported) << " (" << (now - reported) << " s ago), sqlpost "
        << s["version"].get<std::string>() << ", conflicts " << s["conflicts"].get<std::int64_t>()
        << ", rejected mail " << s["rejected"].get<std::int64_t>();
    const auto oldest = s["outbox_oldest"].get<std::int64_t>();
    if (oldest > 0) {
      out << ", oldest unacknowledged part " << (reported - oldest) << " s old";
    }
    for (const auto& h : s["halted"]) {
      out << "\n    STOPPED stream from " << h["partner"].get<std::string>() << ": "
          << h["why"].get<std::string>();
    }
  }
  return out.str();
}

}  // namespace

Result<nlohmann::json> collect_status(Database& db) {
  SQLPOST_TRY_ASSIGN(Transaction read, Transaction::begin(db, Transaction::Kind::kDeferred));
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  nlohmann::json status{{"schema", "sqlpost.status"},
                        {"schema_version", 1},
                        {"site", site.name},
                        {"address", site.address},
                        {"role", role_name(site.role)}};
  if (!site.parent.empty()) {
    status["parent"] = site.parent;
  }
  SQLPOST_TRY_ASSIGN(status["publications"], publications_json(db));
  SQLPOST_TRY_ASSIGN(status["partners"], partners_json(db));
  SQLPOST_TRY_ASSIGN(status["current_epoch"], db.query_int("SELECT epoch FROM sqlpost_epoch"));
  SQLPOST_TRY_ASSIGN(status["log_rows"], db.query_int("SELECT count(*) FROM sqlpost_log"));
  SQLPOST_TRY_ASSIGN(status["rejected_mail"],
                     db.query_int("SELECT count(*) FROM sqlpost_rejected"));
  SQLPOST_TRY_ASSIGN(status["conflicts"], count_conflicts(db));
  SQLPOST_TRY_ASSIGN(const auto alerts, evaluate_alerts(db, std::time(nullptr)));
  status["alerts"] = alerts_json(alerts);
  SQLPOST_TRY_ASSIGN(const DroppedRecords dropped, load_dropped_records(db));
  status["rejected_dropped"] = dropped.rejected;
  SQLPOST_TRY_ASSIGN(status["foreign_mail"],
                     db.query_int("SELECT count(*) FROM sqlpost_foreign_mail"));
  status["foreign_dropped"] = dropped.foreign;
  SQLPOST_TRY_ASSIGN(status["oversize_foreign_mail"],
                     db.query_int("SELECT value FROM sqlpost_meta WHERE key = 'oversize_foreign'"));
  SQLPOST_TRY_ASSIGN(status["bounces"], recent_bounces_json(db));
  SQLPOST_TRY_ASSIGN(status["hierarchy"], hierarchy_json(db));
  return status;
}

namespace {

// One partner of `status` as text.
std::string render_partner_text(const nlohmann::json& p) {
  std::ostringstream out;
  out << "\n  " << p["name"].get<std::string>() << " <" << p["address"].get<std::string>() << "> "
      << p["relation"].get<std::string>() << ", " << p["unsent_changes"].get<std::int64_t>()
      << " change(s) not yet sent";
  if (p.contains("next_send_at")) {
    out << "\n    send schedule: " << p["send_schedule"].get<std::string>() << " (local time); "
        << (p["send_due"].get<bool>()
                ? std::string("due: its next message goes at the next run")
                : "next message at " + p["next_send_local"].get<std::string>());
  } else if (p.value("send_schedule", std::string("always")) != "always") {
    out << "\n    send schedule: " << p["send_schedule"].get<std::string>();
  }
  if (p.contains("delivery")) {
    const auto& d = p["delivery"];
    out << "\n    sent up to #" << d["last_sent_seq"].get<std::int64_t>() << ", confirmed #"
        << d["confirmed_seq"].get<std::int64_t>() << ", applied from it #"
        << d["applied_seq"].get<std::int64_t>() << "; outbox "
        << d["outbox_messages"].get<std::int64_t>() << " message(s), inbox "
        << d["inbox_parts"].get<std::int64_t>() << " part(s), rejected "
        << d["rejected"].get<std::int64_t>();
    out << "\n    last sent " << time_text(d["last_sent_at"].get<std::int64_t>())
        << ", last received " << time_text(d["last_received_at"].get<std::int64_t>());
    if (!d["halted"].get<std::string>().empty()) {
      out << "\n    STOPPED: " << d["halted"].get<std::string>();
    }
    if (d.contains("recovery")) {
      out << "\n    RESTORE " << recovery_heading(d["recovery"]["state"].get<std::string>()) << ": "
          << d["recovery"]["detail"].get<std::string>();
    }
  }
  if (p.contains("key_rotation")) {
    const auto& k = p["key_rotation"];
    if (k["state"].get<std::string>() == "done") {
      out << "\n    key rotated " << time_text(k["done_at"].get<std::int64_t>());
    } else {
      out << "\n    KEY ROTATION under way since " << time_text(k["started_at"].get<std::int64_t>())
          << ": " << k["detail"].get<std::string>();
    }
  }
  for (const auto& s : p["subscriptions"]) {
    out << "\n    subscribes to " << s["publication"].get<std::string>();
    if (!s["value"].get<std::string>().empty()) {
      out << " = " << s["value"].get<std::string>();
    }
  }
  return out.str();
}

}  // namespace

std::string render_status_text(const nlohmann::json& status) {
  std::ostringstream out;
  out << "site " << status["site"].get<std::string>() << " <"
      << status["address"].get<std::string>() << ">, " << status["role"].get<std::string>();
  if (status.contains("parent")) {
    out << " (parent: " << status["parent"].get<std::string>() << ")";
  }
  out << "\npublications:";
  if (status["publications"].empty()) {
    out << " none";
  }
  for (const auto& pub : status["publications"]) {
    out << "\n  " << pub["name"].get<std::string>() << ":";
    for (const auto& a : pub["articles"]) {
      out << " " << a["table"].get<std::string>();
      if (a["columns"].is_array()) {
        out << "(" << a["columns"].size() << " columns)";
      }
    }
  }
  out << "\npartners:";
  if (status["partners"].empty()) {
    out << " none";
  }
  for (const auto& p : status["partners"]) {
    out << render_partner_text(p);
  }
  out << render_hierarchy_text(status.value("hierarchy", nlohmann::json::array()),
                               static_cast<std::int64_t>(std::time(nullptr)));
  out << "\nrejected mail kept: " << status["rejected_mail"].get<std::int64_t>();
  if (status.value("rejected_dropped", std::int64_t{0}) > 0) {
    out << " (" << status["rejected_dropped"].get<std::int64_t>()
        << " older record(s) dropped to stay within the cap)";
  }
  out << "\nforeign mail remembered: " << status.value("foreign_mail", std::int64_t{0});
  if (status.value("oversize_foreign_mail", std::int64_t{0}) > 0) {
    out << " (" << status["oversize_foreign_mail"].get<std::int64_t>()
        << " over the size limit, left in the mailbox)";
  }
  for (const auto& b : status.value("bounces", nlohmann::json::array())) {
    out << "\nBOUNCED " << time_text(b["at"].get<std::int64_t>()) << ": message #"
        << b["seq"].get<std::int64_t>() << " part " << b["part"].get<std::int64_t>() << " to "
        << b["partner"].get<std::string>() << ", " << b["action"].get<std::string>() << " "
        << b["status"].get<std::string>() << " (" << b["diagnostic"].get<std::string>() << ")";
    if (b.contains("resplit_to")) {
      out << "; re-split into parts of at most " << b["resplit_to"].get<std::int64_t>() << " bytes";
    }
  }
  out << "\nconflicts recorded: " << status["conflicts"].get<std::int64_t>()
      << " (sqlpost conflicts DB)\n";
  out << render_alerts_text(status["alerts"]);
  return out.str();
}

}  // namespace sqlpost
