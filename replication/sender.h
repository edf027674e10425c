// sqlpost/replication/sender.h — sending outbox parts and acknowledgements
// (internal to the engine; Engine::send()).
//
// Contract: send_outbox() sends the partner's outbox parts not yet sent, or
// unacknowledged for resend_timeout, each with a fresh Message-ID; it stops at
// the first failure (false: the partner is unreachable this run), and a
// permanent refusal holds the part for resend_timeout. send_ack_only() sends an
// acknowledgement-only message (sequence 0, never itself acknowledged) when an
// acknowledgement or resend request is owed and no data message carried it.
// What was sent is written in batches, never while talking to a server, and
// only after Link::flush() made the batch's mails durable at the link:
// write_after_send() flushes, then commits the batch (and is called for the rest
// at the end of the pass). A crash before the commit means resending, and
// receivers drop duplicates; a failed flush records none of the batch's mails as
// sent (the report says so, the partners left are not sent to this run, and the
// next run sends them again). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "replication/run_context.h"

namespace sqlpost {

// One part in the outbox, due to be sent.
// A part due to be sent; its e-mail is read when it is sent (one in memory at once).
struct OutboxPart {
  std::int64_t seq;
  std::int64_t part;
  std::int64_t mail_bytes = 0;
  std::int64_t parts = 1;
  std::int64_t sent_count = 0;
};

class Sender {
 public:
  explicit Sender(RunContext& run)
      : run_(run),
        flushed_events_(run.report.events.size()),
        flushed_details_(run.report.details.size()) {}

  Result<bool> send_outbox(const Partner& partner);
  Result<> send_ack_only(const Partner& partner);
  Result<> write_after_send();

 private:
  Result<std::vector<OutboxPart>> due_parts(const std::string& site);
  Result<std::string> stored_mail(const std::string& site, const OutboxPart& p);
  Result<> hold_refused_part(const Partner& partner, const OutboxPart& p, const Error& refusal);
  std::function<Result<>()> outbox_update(const char* sql, const std::string& site,
                                          const OutboxPart& p);
  // `sent`: the step records a mail handed to the link (written only once the link
  // flushed it); a refused part's hold is written in any case.
  Result<> record_after_send(std::function<Result<>()> step, bool sent = true);
  void unrecord_unflushed(const Error& failure);

  struct AfterSend {
    std::function<Result<>()> write;
    bool sent = true;
  };

  RunContext& run_;
  // Bookkeeping of parts and acknowledgements already sent, not yet written.
  std::vector<AfterSend> after_send_;
  // What the report counts as sent since the last flush, taken back if it fails.
  std::size_t unflushed_parts_ = 0;
  std::size_t unflushed_acks_ = 0;
  std::size_t flushed_events_ = 0;   // report.events before this index are flushed
  std::size_t flushed_details_ = 0;  // report.details likewise
  bool flush_failed_ = false;        // the link failed to flush: send nothing more
};

}  // namespace sqlpost
