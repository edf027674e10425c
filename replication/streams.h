// sqlpost/replication/streams.h — the delivery state of each partner stream
// (sqlpost_streams): what the engine and the restore recovery read and change.
//
// Contract: Streams reads and updates one row per partner site, each change a
// named operation with explicit parameters (no SQL is assembled from pieces).
// Every call works in the caller's transaction, if any, and changes nothing when
// the site has no row (ensure_all() creates it). Errors are SQLite's (Errc::kDatabase,
// Errc::kBusy). Not thread-safe: it uses the connection's cached statements.
// load_stream_states() (declared in engine.h, for status) is implemented here.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "schema/db.h"

namespace sqlpost {

// One partner stream as the engine reads it.
struct Stream {
  std::int64_t next_seq = 1;
  std::int64_t acked_seq = 0;
  std::int64_t applied_seq = 0;
  bool ack_owed = false;
  std::int64_t gap_since = 0;
  std::int64_t resend_requested_at = 0;
  std::int64_t resend_from = 0;
  std::string halted;
  std::int64_t restore_request = 0;  // our restore request, not yet in a message
};

class Streams {
 public:
  explicit Streams(Database& db) : db_(db) {}

  // Creates the row (a new stream) of every partner site that has none, in one
  // statement (one write, and none when every partner has its row).
  Result<> ensure_all();
  // Errc::kInternal when the site has no row.
  Result<Stream> load(const std::string& site);
  // The sites whose stream owes an acknowledgement or a resend request (what
  // Sender::send_ack_only sends): one read for a pass, however many partners.
  Result<std::set<std::string>> sites_owing_ack();

  // ---- receiving
  Result<> count_rejected(const std::string& site);
  Result<> set_last_received(const std::string& site, std::int64_t at);
  Result<> mark_ack_owed(const std::string& site);

  // ---- acknowledgements of our messages
  Result<> set_acked(const std::string& site, std::int64_t seq);
  // acked_seq goes down to `seq` if it is above.
  Result<> lower_acked(const std::string& site, std::int64_t seq);

  // ---- applying the partner's messages
  // The highest acknowledgement of ours seen in an applied message of the partner.
  Result<> note_seen_ack(const std::string& site, std::int64_t ack);
  // Message `seq` was applied: the numbers skipped to reach it are counted, an
  // acknowledgement is owed, a gap or halt is over.
  Result<> record_applied_seq(const std::string& site, std::int64_t seq);
  Result<> set_gap_since(const std::string& site, std::int64_t at);
  Result<> set_resend_from(const std::string& site, std::int64_t seq);
  Result<> halt(const std::string& site, const std::string& why);
  // The partner went back in time: `why`, and recovery_ack = kWaitingForPartner.
  Result<> wait_for_partner_recovery(const std::string& site, const std::string& why);

  // ---- preparing and sending our messages
  // Our message next_seq is in the outbox and carries the owed acknowledgement,
  // the resend request (if `carried_resend_request`, asked at `at`) and the
  // restore request: the stream numbers on.
  Result<> record_prepared(const std::string& site, bool carried_resend_request, std::int64_t at);
  // An echo window (replication/restore.h) ends once a message covered it.
  Result<> end_echo_window(const std::string& site, std::int64_t closed_epoch);
  Result<> set_last_sent(const std::string& site, std::int64_t at);
  // An acknowledgement-only message went out at `at`; with
  // `carried_resend_request` it also asked for a resend.
  Result<> record_ack_sent(const std::string& site, bool carried_resend_request, std::int64_t at);

 private:
  Result<> run(const std::string& sql, const std::string& site);
  Result<> run(const std::string& sql, const std::string& site, std::int64_t value);
  Database& db_;
};

}  // namespace sqlpost
