// sqlpost/replication/engine.h — one site's message agent run: receive,
// apply, prepare, send; the delivery guarantees live here.
//
// Contract:
//  * receive(): every mail in the site's mailbox is classified. Foreign mail
//    (not sqlpost's) is remembered by id and never touched. sqlpost mail that
//    does not parse, authenticate, come from a known partner, or is addressed to
//    another site, is stored in sqlpost_rejected, counted, and only then removed
//    from the mailbox. Authenticated parts are committed to the inbox before
//    they are removed from the mailbox; parts of messages already applied are
//    dropped as duplicates (and re-acknowledged).
//  * apply(): per partner, message n is applied only after n-1, with its
//    changes, the "applied n" record and its acknowledgement handling in one
//    transaction, under an origin mark naming the partner. A gap older than
//    gap_patience asks the partner to resend (at most once per resend_interval).
//  * prepare(): cuts an epoch and, per partner, stores the next message (the
//    routed changes since the partner's position) in the outbox together with
//    the advance of that position, in one transaction. A partner with a send
//    schedule (replication/send_schedule.h) that is not due is left out: its
//    changes stay in the change log for its next due message, and a note says
//    when that is. A restore request of ours is never held back, nor is
//    anything when ignore_send_schedule is set.
//  * send(): sends outbox parts not yet sent, or unacknowledged for
//    resend_timeout; sends an ack-only message (sequence 0, never itself
//    acknowledged) when an acknowledgement or resend request is owed and no
//    data message carries it.
// Times are seconds from the injected clock. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "replication/payload.h"
#include "schema/db.h"
#include "transport/link.h"

namespace sqlpost {

struct EngineOptions {
  std::size_t max_message_bytes = 1'000'000;
  std::int64_t resend_timeout = 3600;  // resend unacknowledged messages after this
  std::int64_t gap_patience = 300;     // wait this long for a missing message
  std::int64_t resend_interval = 600;  // at most one resend request per partner per interval
  std::int64_t log_retention =
      std::int64_t{7} * 24 * 3600;    // keep acknowledged changes this long (rescan)
  std::function<std::int64_t()> now;  // seconds; defaults to the system clock
  DecodeLimits decode_limits;         // limits.max_changes, limits.max_value_bytes
  std::string version;                // this sqlpost's version, told to the parent
  bool ignore_send_schedule = false;  // prepare for every partner now (run --send-now)
  // Test hook: returning true at a named point makes the run stop right there,
  // as if the process had died (nothing after it happens, open transactions roll back).
  std::function<bool(std::string_view point)> crash_at;
};

// One message or part event of a run, for the site's message log (sqlpost log):
// received, duplicate, rejected, applied, stopped, acknowledged, prepared,
// sent, resent, refused, failed. Sequence 0 is an acknowledgement-only message.
struct MessageEvent {
  std::int64_t at = 0;
  std::string partner;
  std::string event;
  std::int64_t seq = 0;
  std::int64_t part = 0;
  std::int64_t parts = 0;
  std::int64_t bytes = 0;
  std::int64_t changes = 0;    // rows (applied, prepared) or messages (acknowledged)
  std::int64_t conflicts = 0;  // applied
  std::int64_t lag = 0;        // acknowledged: seconds from writing the message to its ack
  std::string detail;
};

struct RunReport {
  std::size_t mails_seen = 0;
  std::size_t foreign = 0;
  std::size_t rejected = 0;
  std::size_t duplicates = 0;
  std::size_t parts_received = 0;
  std::size_t messages_applied = 0;
  std::size_t changes_applied = 0;
  std::size_t messages_prepared = 0;
  std::size_t parts_sent = 0;
  std::size_t acks_sent = 0;
  std::size_t send_failures = 0;
  std::vector<std::string> problems;  // failures, one line each, for the log
  std::vector<std::string> notes;     // things worth logging that are not failures
  std::vector<std::string> details;   // every message and part, for a verbose log
  std::vector<MessageEvent> events;   // every message and part, for the message log
  Errc worst = Errc::kInternal;       // meaningful when !problems.empty()
};

// Which halves of a run to do (sqlpost run --receive-only / --send-only).
struct RunPhases {
  bool receive = true;  // receive, then apply
  bool send = true;     // prepare, then send
};

class Engine {
 public:
  Engine(Database& db, transport::Link& link, EngineOptions options);

  Result<> receive(RunReport& report);
  Result<> apply(RunReport& report);
  Result<> prepare(RunReport& report);
  Result<> send(RunReport& report);
  // The one orchestration of a run, used by the program and the tests alike:
  // receive → apply → prepare → send. A failure of the link while receiving is
  // in the report and the run goes on (the inbox is applied, the outbox sent);
  // a database that another connection kept locked longer than its lock wait
  // ends the run with a report that says so (worst = Errc::kBusy); any other
  // database failure ends it with that error.
  Result<RunReport> run_once(RunPhases phases = {});

 private:
  Result<> run_phases(RunReport& report, RunPhases phases);
  Database& db_;
  transport::Link& link_;
  EngineOptions options_;
};

// Delivery state of one partner stream, for status.
struct StreamState {
  std::string site;
  std::int64_t next_seq = 1;
  std::int64_t acked_seq = 0;
  std::int64_t applied_seq = 0;
  std::int64_t outbox_messages = 0;
  std::int64_t inbox_parts = 0;
  std::int64_t rejected = 0;
  std::int64_t last_sent_at = 0;
  std::int64_t last_received_at = 0;
  std::string halted;
  // A restore from a backup, of this site or the partner (docs/protocol.md):
  // what happened, and "in progress", "done", "waiting for the partner" or
  // "re-extract" (the change log no longer reaches back). Empty: none seen.
  std::string recovery;
  std::string recovery_state;
};

Result<std::vector<StreamState>> load_stream_states(Database& db);

}  // namespace sqlpost
