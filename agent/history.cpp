#include "agent/history.h"

#include <array>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <sstream>

#include "agent/params.h"
#include "platform/process.h"
#include "schema/metadata.h"
#include "schema/migrations.h"

namespace sqlpost {
namespace {

using nlohmann::json;

// The additions one event makes to its partner's statistics of the day.
struct StatsDelta {
  std::int64_t messages_in = 0, parts_in = 0, bytes_in = 0, rows_in = 0;
  std::int64_t messages_out = 0, parts_out = 0, bytes_out = 0, rows_out = 0;
  std::int64_t resent = 0, refused = 0, rejected = 0, conflicts = 0, lag = 0, lag_count = 0;
};

StatsDelta delta_of(const MessageEvent& e) {
  StatsDelta d;
  if (e.event == "received") {
    d.parts_in = 1;
    d.bytes_in = e.bytes;
  } else if (e.event == "applied") {
    d.messages_in = 1;
    d.rows_in = e.changes;
    d.conflicts = e.conflicts;
  } else if (e.event == "prepared") {
    d.messages_out = 1;
    d.rows_out = e.changes;
  } else if (e.event == "sent" || e.event == "resent") {
    d.parts_out = 1;
    d.bytes_out = e.bytes;
    d.resent = e.event == "resent" ? 1 : 0;
  } else if (e.event == "refused") {
    d.refused = 1;
  } else if (e.event == "rejected") {
    d.rejected = 1;
  } else if (e.event == "acknowledged") {
    d.lag = e.lag;
    d.lag_count = 1;
  }
  return d;
}

Result<> add_stats(Database& db, const MessageEvent& e) {
  const StatsDelta d = delta_of(e);
  SQLPOST_TRY_ASSIGN(
      Statement * st,
      db.cached("INSERT INTO sqlpost_stats VALUES (date(?1, 'unixepoch'), ?2, ?3, ?4, ?5, ?6, ?7, "
                "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16) ON CONFLICT (day, partner) DO "
                "UPDATE SET messages_in = messages_in + ?3, parts_in = parts_in + ?4, bytes_in = "
                "bytes_in + ?5, rows_in = rows_in + ?6, messages_out = messages_out + ?7, "
                "parts_out = parts_out + ?8, bytes_out = bytes_out + ?9, rows_out = rows_out + "
                "?10, resent = resent + ?11, refused = refused + ?12, rejected = rejected + ?13, "
                "conflicts = conflicts + ?14, lag_max = max(lag_max, ?15), lag_sum = lag_sum + "
                "?15, lag_count = lag_count + ?16"));
  st->bind(1, e.at).bind(2, e.partner);
  const std::array<std::int64_t, 14> values = {
      d.messages_in, d.parts_in, d.bytes_in, d.rows_in,  d.messages_out, d.parts_out, d.bytes_out,
      d.rows_out,    d.resent,   d.refused,  d.rejected, d.conflicts,    d.lag,       d.lag_count};
  for (std::size_t i = 0; i < values.size(); ++i) {
    st->bind(static_cast<int>(i) + 3, values[i]);
  }
  return st->run();
}

Result<> add_event(Database& db, std::int64_t run, const MessageEvent& e) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("INSERT INTO sqlpost_message_log(at, run, partner, event, seq, "
                               "part, parts, bytes, changes, detail) VALUES (?, ?, ?, ?, ?, ?, "
                               "?, ?, ?, ?)"));
  st->bind(1, e.at).bind(2, run).bind(3, e.partner).bind(4, e.event).bind(5, e.seq);
  st->bind(6, e.part).bind(7, e.parts).bind(8, e.bytes).bind(9, e.changes);
  if (e.detail.empty()) {
    st->bind_null(10);
  } else {
    st->bind(10, e.detail);
  }
  SQLPOST_TRY(st->run());
  return add_stats(db, e);
}

std::string outcome_of(const PassRecord& pass) {
  if (pass.report == nullptr) {
    return "failed";
  }
  return pass.report->problems.empty() ? "ok" : "problems";
}

Result<std::int64_t> insert_run(Database& db, const PassRecord& pass) {
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("INSERT INTO sqlpost_runs(started_at, ended_at, pid, mode, outcome, exit_code, "
                 "parts_received, duplicates, rejected, messages_applied, changes_applied, "
                 "messages_prepared, parts_sent, acks_sent, send_failures, message) VALUES (?, ?, "
                 "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, pass.started_at).bind(2, pass.ended_at).bind(3, std::int64_t{platform::process_id()});
  st.bind(4, pass.mode).bind(5, outcome_of(pass)).bind(6, std::int64_t{pass.exit_code});
  const RunReport empty;
  const RunReport& r = pass.report != nullptr ? *pass.report : empty;
  const std::array<std::size_t, 9> counts = {
      r.parts_received,    r.duplicates, r.rejected,  r.messages_applied, r.changes_applied,
      r.messages_prepared, r.parts_sent, r.acks_sent, r.send_failures};
  for (std::size_t i = 0; i < counts.size(); ++i) {
    st.bind(static_cast<int>(i) + 7, static_cast<std::int64_t>(counts[i]));
  }
  const std::string message =
      pass.report == nullptr ? pass.error : (r.problems.empty() ? "" : r.problems.front());
  if (message.empty()) {
    st.bind_null(16);
  } else {
    st.bind(16, message);
  }
  SQLPOST_TRY(st.run());
  return db.last_insert_rowid();
}

Result<> prune(Database& db, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(const std::int64_t keep,
                     int_parameter(db, "history_retention", kDefaultHistoryRetention));
  SQLPOST_TRY_ASSIGN(const std::int64_t keep_stats,
                     int_parameter(db, "stats_retention", kDefaultStatsRetention));
  SQLPOST_TRY_ASSIGN(Statement runs, db.prepare("DELETE FROM sqlpost_runs WHERE started_at < ?"));
  runs.bind(1, now - keep);
  SQLPOST_TRY(runs.run());
  SQLPOST_TRY_ASSIGN(Statement log, db.prepare("DELETE FROM sqlpost_message_log WHERE at < ?"));
  log.bind(1, now - keep);
  SQLPOST_TRY(log.run());
  SQLPOST_TRY_ASSIGN(Statement stats,
                     db.prepare("DELETE FROM sqlpost_stats WHERE day < date(?, 'unixepoch')"));
  stats.bind(1, now - keep_stats);
  return stats.run();
}

Result<json> query_rows(Database& db, const std::string& sql,
                        const std::function<void(Statement&)>& bind) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare(sql));
  bind(st);
  json rows = json::array();
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    json r = json::object();
    for (int i = 0; i < st.column_count(); ++i) {
      const Value v = st.column(i);
      if (v.is_null()) {
        r[st.column_name(i)] = nullptr;
      } else if (const auto* n = std::get_if<std::int64_t>(&v.storage())) {
        r[st.column_name(i)] = *n;
      } else {
        r[st.column_name(i)] = st.column_text(i);
      }
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

json with_times(json rows, std::initializer_list<const char*> fields) {
  for (auto& r : rows) {
    for (const char* f : fields) {
      if (r.contains(f) && r[f].is_number_integer()) {
        r[std::string(f) + "_utc"] = utc_time(r[f].get<std::int64_t>());
      }
    }
  }
  return rows;
}

std::string text_of(const json& v) {
  if (v.is_null()) {
    return "";
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

Result<json> document(Database& db, const char* schema) {
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  return json{{"schema", schema}, {"schema_version", 1}, {"site", site.name}};
}

}  // namespace

namespace {

// timegm() without the C library's extension: the civil date through <chrono>.
std::int64_t seconds_since_epoch(const std::tm& tm) {
  using namespace std::chrono;
  const sys_days day{year{tm.tm_year + 1900} / month{static_cast<unsigned>(tm.tm_mon + 1)} /
                     std::chrono::day{static_cast<unsigned>(tm.tm_mday)}};
  const std::int64_t hours = tm.tm_hour;
  const std::int64_t minutes = tm.tm_min;
  return day.time_since_epoch().count() * std::int64_t{86400} + hours * 3600 + minutes * 60 +
         tm.tm_sec;
}

}  // namespace

std::string utc_time(std::int64_t seconds) {
  if (seconds == 0) {
    return "";
  }
  const std::tm tm = platform::utc_time(static_cast<std::time_t>(seconds));
  std::array<char, 32> buf{};
  (void)std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

Result<> record_pass(Database& db, const PassRecord& pass) {
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  SQLPOST_TRY_ASSIGN(const std::int64_t run, insert_run(db, pass));
  if (pass.report != nullptr) {
    for (const auto& e : pass.report->events) {
      SQLPOST_TRY(add_event(db, run, e));
    }
  }
  SQLPOST_TRY(prune(db, pass.ended_at));
  return tx.commit();
}

Result<> record_pass(const std::string& path, const PassRecord& pass) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  return record_pass(db, pass);
}

Result<std::int64_t> parse_since(const std::string& text, std::int64_t now) {
  const auto bad =
      make_error(Errc::kInvalidArgument, "--since '" + text +
                                             "': give a time ago (45s, 90m, 2h, 3d) or a UTC date "
                                             "(2026-11-25 or 2026-11-25T10:00)");
  if (text.empty()) {
    return bad;
  }
  const char unit = text.back();
  const std::string number = text.substr(0, text.size() - 1);
  if (std::string("smhd").find(unit) != std::string::npos && !number.empty() &&
      number.find_first_not_of("0123456789") == std::string::npos && number.size() < 10) {
    const std::int64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
    return now - std::stoll(number) * scale;
  }
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    std::tm tm{};
    std::istringstream in(text);
    in >> std::get_time(&tm, format);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof()) {
      return seconds_since_epoch(tm);
    }
  }
  return bad;
}

Result<json> collect_log(Database& db, const LogQuery& query) {
  SQLPOST_TRY_ASSIGN(json log, document(db, "sqlpost.log"));
  SQLPOST_TRY_ASSIGN(
      json messages,
      query_rows(db,
                 "SELECT * FROM (SELECT id, at, run, partner, event, seq, part, parts, bytes, "
                 "changes, detail FROM sqlpost_message_log WHERE at >= ?1 AND (?2 = '' OR "
                 "partner = ?2) ORDER BY id DESC LIMIT ?3) ORDER BY id",
                 [&](Statement& st) {
                   st.bind(1, query.since).bind(2, query.partner).bind(3, query.limit);
                 }));
  SQLPOST_TRY_ASSIGN(
      json runs, query_rows(db,
                            "SELECT * FROM (SELECT * FROM sqlpost_runs WHERE started_at >= ?1 "
                            "ORDER BY id DESC LIMIT ?2) ORDER BY id",
                            [&](Statement& st) { st.bind(1, query.since).bind(2, query.limit); }));
  log["messages"] = with_times(std::move(messages), {"at"});
  log["runs"] = with_times(std::move(runs), {"started_at", "ended_at"});
  return log;
}

std::string render_log_text(const json& log, bool runs) {
  std::ostringstream out;
  if (runs) {
    for (const auto& r : log["runs"]) {
      out << r["started_at_utc"].get<std::string>() << "  run #" << r["id"] << " pid " << r["pid"]
          << " " << text_of(r["mode"]) << ": " << text_of(r["outcome"]) << ", exit "
          << r["exit_code"] << ", "
          << r["ended_at"].get<std::int64_t>() - r["started_at"].get<std::int64_t>()
          << " s; received " << r["parts_received"] << " part(s), applied " << r["messages_applied"]
          << " message(s) (" << r["changes_applied"] << " change(s)), prepared "
          << r["messages_prepared"] << ", sent " << r["parts_sent"] << " part(s) and "
          << r["acks_sent"] << " ack(s)";
      if (!r["message"].is_null()) {
        out << "\n    " << text_of(r["message"]);
      }
      out << "\n";
    }
    out << log["runs"].size() << " run(s) shown\n";
    return out.str();
  }
  for (const auto& m : log["messages"]) {
    out << m["at_utc"].get<std::string>() << "  " << text_of(m["partner"]) << "  "
        << text_of(m["event"]) << " #" << m["seq"];
    if (m["parts"].get<std::int64_t>() > 0) {
      out << " part " << m["part"] << "/" << m["parts"];
    }
    if (m["bytes"].get<std::int64_t>() > 0) {
      out << ", " << m["bytes"] << " bytes";
    }
    if (m["changes"].get<std::int64_t>() > 0) {
      out << ", " << m["changes"]
          << (text_of(m["event"]) == "acknowledged" ? " message(s)" : " change(s)");
    }
    if (!m["detail"].is_null()) {
      out << ": " << text_of(m["detail"]);
    }
    out << "\n";
  }
  out << log["messages"].size() << " event(s) shown, oldest first\n";
  return out.str();
}

Result<json> collect_stats(Database& db, std::int64_t days) {
  SQLPOST_TRY_ASSIGN(json stats, document(db, "sqlpost.stats"));
  SQLPOST_TRY_ASSIGN(
      stats["days"],
      query_rows(db,
                 "SELECT day, partner, messages_in, parts_in, bytes_in, rows_in, messages_out, "
                 "parts_out, bytes_out, rows_out, resent, refused, rejected, conflicts, lag_max, "
                 "CASE WHEN lag_count > 0 THEN lag_sum / lag_count END AS lag_avg FROM "
                 "sqlpost_stats WHERE day >= date('now', ?) ORDER BY day, partner",
                 [&](Statement& st) { st.bind(1, "-" + std::to_string(days) + " days"); }));
  return stats;
}

std::string render_stats_text(const json& stats) {
  std::ostringstream out;
  out << std::left << std::setw(11) << "day" << std::setw(12) << "partner" << std::right
      << std::setw(8) << "msg in" << std::setw(8) << "rows in" << std::setw(11) << "bytes in"
      << std::setw(9) << "msg out" << std::setw(9) << "rows out" << std::setw(11) << "bytes out"
      << std::setw(7) << "resent" << std::setw(8) << "refused" << std::setw(9) << "rejected"
      << std::setw(10) << "conflicts" << std::setw(9) << "lag max" << std::setw(9) << "lag avg"
      << "\n";
  for (const auto& d : stats["days"]) {
    out << std::left << std::setw(11) << text_of(d["day"]) << std::setw(12) << text_of(d["partner"])
        << std::right << std::setw(8) << d["messages_in"] << std::setw(8) << d["rows_in"]
        << std::setw(11) << d["bytes_in"] << std::setw(9) << d["messages_out"] << std::setw(9)
        << d["rows_out"] << std::setw(11) << d["bytes_out"] << std::setw(7) << d["resent"]
        << std::setw(8) << d["refused"] << std::setw(9) << d["rejected"] << std::setw(10)
        << d["conflicts"] << std::setw(9) << d["lag_max"] << std::setw(9) << text_of(d["lag_avg"])
        << "\n";
  }
  return out.str();
}

Result<json> collect_queue(Database& db) {
  SQLPOST_TRY_ASSIGN(json queue, document(db, "sqlpost.queue"));
  const auto none = [](Statement&) {};
  SQLPOST_TRY_ASSIGN(
      json outbox,
      query_rows(db,
                 "SELECT o.site AS partner, o.seq, o.part, o.parts, length(o.mail) AS bytes, "
                 "o.created_at, o.sent_count, o.last_sent_at, CASE WHEN o.sent_count = 0 AND "
                 "o.last_sent_at IS NULL THEN 'waiting to be sent' WHEN o.sent_count = 0 THEN "
                 "'refused by the server, held' ELSE 'sent, waiting for the acknowledgement' END "
                 "AS state FROM sqlpost_outbox o ORDER BY o.site, o.seq, o.part",
                 none));
  SQLPOST_TRY_ASSIGN(
      json inbox,
      query_rows(db,
                 "SELECT i.site AS partner, i.seq, i.part, i.parts, length(i.mail) AS bytes, "
                 "i.received_at, CASE WHEN s.halted IS NOT NULL THEN 'stopped: ' || s.halted WHEN "
                 "i.seq > s.applied_seq + 1 THEN 'waiting for message ' || (s.applied_seq + 1) "
                 "WHEN (SELECT count(*) FROM sqlpost_inbox j WHERE j.site = i.site AND j.seq = "
                 "i.seq AND j.digest = i.digest) < i.parts THEN 'waiting for its other parts' ELSE "
                 "'ready to apply' END "
                 "AS state FROM sqlpost_inbox i LEFT JOIN sqlpost_streams s ON s.site = i.site "
                 "ORDER BY i.site, i.seq, i.part",
                 none));
  SQLPOST_TRY_ASSIGN(json rejected,
                     query_rows(db,
                                "SELECT id, received_at, claimed_sender, reason, length(mail) AS "
                                "bytes FROM sqlpost_rejected ORDER BY id",
                                none));
  SQLPOST_TRY_ASSIGN(json foreign,
                     query_rows(db,
                                "SELECT mail_id, seen_at FROM sqlpost_foreign_mail ORDER BY "
                                "seen_at, mail_id",
                                none));
  queue["outbox"] = with_times(std::move(outbox), {"created_at", "last_sent_at"});
  queue["inbox"] = with_times(std::move(inbox), {"received_at"});
  queue["rejected"] = with_times(std::move(rejected), {"received_at"});
  queue["foreign"] = with_times(std::move(foreign), {"seen_at"});
  return queue;
}

std::string render_queue_text(const json& queue) {
  std::ostringstream out;
  out << "outbox: " << queue["outbox"].size() << " part(s)\n";
  for (const auto& o : queue["outbox"]) {
    out << "  to " << text_of(o["partner"]) << " #" << o["seq"] << " part " << o["part"] << "/"
        << o["parts"] << ", " << o["bytes"] << " bytes, written "
        << o["created_at_utc"].get<std::string>() << ", sent " << o["sent_count"]
        << " time(s): " << text_of(o["state"]) << "\n";
  }
  out << "inbox: " << queue["inbox"].size() << " part(s)\n";
  for (const auto& i : queue["inbox"]) {
    out << "  from " << text_of(i["partner"]) << " #" << i["seq"] << " part " << i["part"] << "/"
        << i["parts"] << ", " << i["bytes"] << " bytes, received "
        << i["received_at_utc"].get<std::string>() << ": " << text_of(i["state"]) << "\n";
  }
  out << "set aside: " << queue["rejected"].size() << " rejected mail(s), "
      << queue["foreign"].size() << " foreign mail(s) left in the mailbox\n";
  for (const auto& r : queue["rejected"]) {
    out << "  rejected #" << r["id"] << " " << r["received_at_utc"].get<std::string>()
        << (r["claimed_sender"].is_null() || text_of(r["claimed_sender"]).empty()
                ? ""
                : " claiming to be from " + text_of(r["claimed_sender"]))
        << ", " << text_of(r["bytes"]) << " bytes: " << text_of(r["reason"]) << "\n";
  }
  for (const auto& f : queue["foreign"]) {
    out << "  foreign " << text_of(f["mail_id"]) << " seen " << f["seen_at_utc"].get<std::string>()
        << "\n";
  }
  return out.str();
}

}  // namespace sqlpost
