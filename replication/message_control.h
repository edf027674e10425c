// sqlpost/replication/message_control.h — what every message carries besides its
// changes: the acknowledgement and resend request of the reverse stream, health
// reports toward the parent, and what a restored site needs to notice that it
// went back in time (internal to the engine).
//
// Contract: process_ack() handles the acknowledgement and resend request of an
// authenticated message from `partner` (a control message, or a data message in
// its apply transaction): evidence that this site was restored starts its own
// recovery; otherwise acknowledged outbox messages are deleted and a resend
// request makes the parts due again (at most once per resend_interval).
// keep_health_from() stores a child's health report. add_health_for() and
// add_restore_fields() fill those fields of a message to `partner`. All work in
// the caller's transaction. Not thread-safe.
#pragma once

#include "replication/payload.h"
#include "replication/run_context.h"
#include "replication/streams.h"

namespace sqlpost {

Result<> process_ack(RunContext& run, const Partner& partner, const Payload& payload);
Result<> keep_health_from(RunContext& run, const Partner& partner, const Payload& payload);
// Every message to the parent carries this site's health and its children's.
Result<> add_health_for(RunContext& run, const Partner& partner, Payload& payload);
// What the partner needs to notice that it went back in time: the identity of
// its message we applied last, and the highest of ours it acknowledged.
Result<> add_restore_fields(RunContext& run, const Partner& partner, const Stream& s,
                            Payload& payload);

}  // namespace sqlpost
