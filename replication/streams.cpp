#include "replication/streams.h"

#include <optional>

#include "replication/engine.h"
#include "replication/restore.h"

namespace sqlpost {

namespace {

// recovery_ack: NULL needs a person; -1 waits for the partner to recover; else
// the recovery is done once the partner confirmed our messages up to it.
std::string recovery_state(const StreamState& s, std::optional<std::int64_t> recovery_ack,
                           bool request_unsent) {
  if (!recovery_ack || *recovery_ack == kThisSiteNeedsExtract) {
    return "re-extract";
  }
  if (*recovery_ack == kWaitingForPartner) {
    return "waiting for the partner";
  }
  const bool done = !request_unsent && s.acked_seq >= *recovery_ack && s.outbox_messages == 0 &&
                    s.inbox_parts == 0;
  return done ? "done" : "in progress";
}

}  // namespace

Result<std::vector<StreamState>> load_stream_states(Database& db) {
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("SELECT s.site, next_seq, acked_seq, applied_seq, (SELECT count(DISTINCT seq) "
                 "FROM sqlpost_outbox o WHERE o.site = s.site), (SELECT count(*) FROM "
                 "sqlpost_inbox i WHERE i.site = s.site), rejected, ifnull(last_sent_at, 0), "
                 "ifnull(last_received_at, 0), ifnull(halted, ''), ifnull(recovery, ''), "
                 "recovery_ack, restore_request IS NOT NULL FROM sqlpost_streams s ORDER "
                 "BY s.site"));
  std::vector<StreamState> states;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    states.push_back({st.column_text(0), st.column_int(1), st.column_int(2), st.column_int(3),
                      st.column_int(4), st.column_int(5), st.column_int(6), st.column_int(7),
                      st.column_int(8), st.column_text(9), st.column_text(10), ""});
    StreamState& s = states.back();
    if (!s.recovery.empty()) {
      s.recovery_state = recovery_state(
          s, st.column_is_null(11) ? std::optional<std::int64_t>() : st.column_int(11),
          st.column_int(12) != 0);
    }
  }
  return states;
}

Result<> Streams::run(const std::string& sql, const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st, db_.cached(sql));
  st->bind(1, site);
  return st->run();
}

Result<> Streams::run(const std::string& sql, const std::string& site, std::int64_t value) {
  SQLPOST_TRY_ASSIGN(Statement * st, db_.cached(sql));
  st->bind(1, site).bind(2, value);
  return st->run();
}

Result<> Streams::ensure_all() {
  SQLPOST_TRY_ASSIGN(const std::int64_t missing,
                     db_.query_int("SELECT count(*) FROM sqlpost_sites WHERE name NOT IN (SELECT "
                                   "site FROM sqlpost_streams)"));
  if (missing == 0) {
    return success();  // the usual case: no write at all
  }
  return db_.exec("INSERT OR IGNORE INTO sqlpost_streams(site) SELECT name FROM sqlpost_sites");
}

Result<Stream> Streams::load(const std::string& site) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db_.cached("SELECT next_seq, acked_seq, applied_seq, ack_owed, "
                                "ifnull(gap_since, 0), ifnull(resend_requested_at, 0), "
                                "ifnull(resend_from, 0), ifnull(halted, ''), "
                                "ifnull(restore_request, 0) FROM sqlpost_streams WHERE site = ?"));
  st->bind(1, site);
  SQLPOST_TRY_ASSIGN(const bool row, st->step());
  if (!row) {
    return make_error(Errc::kInternal, "no delivery state for site " + site);
  }
  Stream s{st->column_int(0),      st->column_int(1),  st->column_int(2),
           st->column_int(3) != 0, st->column_int(4),  st->column_int(5),
           st->column_int(6),      st->column_text(7), st->column_int(8)};
  st->reset();
  return s;
}

Result<std::set<std::string>> Streams::sites_owing_ack() {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db_.cached("SELECT site FROM sqlpost_streams WHERE ack_owed != 0 OR "
                                "ifnull(resend_from, 0) != 0"));
  SQLPOST_TRY_ASSIGN(const auto sites,
                     st->rows([](const Statement& row) { return row.column_text(0); }));
  return std::set<std::string>(sites.begin(), sites.end());
}

Result<> Streams::count_rejected(const std::string& site) {
  return run("UPDATE sqlpost_streams SET rejected = rejected + 1 WHERE site = ?1", site);
}

Result<> Streams::set_last_received(const std::string& site, std::int64_t at) {
  return run("UPDATE sqlpost_streams SET last_received_at = ?2 WHERE site = ?1", site, at);
}

Result<> Streams::mark_ack_owed(const std::string& site) {
  return run("UPDATE sqlpost_streams SET ack_owed = 1 WHERE site = ?1", site);
}

Result<> Streams::set_acked(const std::string& site, std::int64_t seq) {
  return run("UPDATE sqlpost_streams SET acked_seq = ?2 WHERE site = ?1", site, seq);
}

Result<> Streams::lower_acked(const std::string& site, std::int64_t seq) {
  return run("UPDATE sqlpost_streams SET acked_seq = min(acked_seq, ?2) WHERE site = ?1", site,
             seq);
}

Result<> Streams::note_seen_ack(const std::string& site, std::int64_t ack) {
  return run("UPDATE sqlpost_streams SET seen_ack = max(seen_ack, ?2) WHERE site = ?1", site, ack);
}

Result<> Streams::record_applied_seq(const std::string& site, std::int64_t seq) {
  return run(
      "UPDATE sqlpost_streams SET skipped = skipped + ?2 - applied_seq - 1, applied_seq = ?2, "
      "ack_owed = 1, gap_since = NULL, halted = NULL WHERE site = ?1",
      site, seq);
}

Result<> Streams::set_gap_since(const std::string& site, std::int64_t at) {
  return run("UPDATE sqlpost_streams SET gap_since = ?2 WHERE site = ?1", site, at);
}

Result<> Streams::set_resend_from(const std::string& site, std::int64_t seq) {
  return run("UPDATE sqlpost_streams SET resend_from = ?2 WHERE site = ?1", site, seq);
}

Result<> Streams::halt(const std::string& site, const std::string& why) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db_.cached("UPDATE sqlpost_streams SET halted = ?2 WHERE site = ?1"));
  st->bind(1, site).bind(2, why);
  return st->run();
}

Result<> Streams::wait_for_partner_recovery(const std::string& site, const std::string& why) {
  SQLPOST_TRY_ASSIGN(Statement * st, db_.cached("UPDATE sqlpost_streams SET recovery = ?2, "
                                                "recovery_ack = ?3 WHERE site = ?1"));
  st->bind(1, site).bind(2, why).bind(3, kWaitingForPartner);
  return st->run();
}

Result<> Streams::record_prepared(const std::string& site, bool carried_resend_request,
                                  std::int64_t at) {
  if (carried_resend_request) {
    return run(
        "UPDATE sqlpost_streams SET next_seq = next_seq + 1, ack_owed = 0, resend_from = NULL, "
        "restore_request = NULL, resend_requested_at = ?2 WHERE site = ?1",
        site, at);
  }
  return run(
      "UPDATE sqlpost_streams SET next_seq = next_seq + 1, ack_owed = 0, resend_from = NULL, "
      "restore_request = NULL WHERE site = ?1",
      site);
}

Result<> Streams::end_echo_window(const std::string& site, std::int64_t closed_epoch) {
  return run(
      "UPDATE sqlpost_streams SET echo_from = NULL, echo_to = NULL WHERE site = ?1 AND "
      "echo_to <= ?2",
      site, closed_epoch);
}

Result<> Streams::set_last_sent(const std::string& site, std::int64_t at) {
  return run("UPDATE sqlpost_streams SET last_sent_at = ?2 WHERE site = ?1", site, at);
}

Result<> Streams::record_ack_sent(const std::string& site, bool carried_resend_request,
                                  std::int64_t at) {
  if (carried_resend_request) {
    return run(
        "UPDATE sqlpost_streams SET ack_owed = 0, last_sent_at = ?2, resend_from = NULL, "
        "resend_requested_at = ?2 WHERE site = ?1",
        site, at);
  }
  return run("UPDATE sqlpost_streams SET ack_owed = 0, last_sent_at = ?2 WHERE site = ?1", site,
             at);
}

}  // namespace sqlpost
