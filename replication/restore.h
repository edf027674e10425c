// sqlpost/replication/restore.h — a site or its partner went back in time
// (restored from a backup): detection from authenticated messages, and the
// automatic recovery of both sides (docs/protocol.md, "A site restored from a
// backup").
//
// Contract:
//  * Every function works inside the caller's write transaction and reads only
//    this site's own records and a Payload that the transport authenticated as
//    coming from `partner`: nothing a stranger can forge triggers anything.
//  * own_restore_evidence() says why the partner's message proves that this site
//    lost state it had shared with the partner (empty: no evidence): the partner
//    applied a message of ours we never sent, or one whose identity differs from
//    what we sent under that number, or it holds an acknowledgement of ours above
//    what we applied. Messages the partner built before it learnt of our last
//    recovery (ack below restore_seq) are never evidence.
//  * begin_own_recovery() moves this site's numbering past what the partner
//    applied (and past every number used since the restore), makes the next message regenerate our
//    changes from the first message the partner had not confirmed in this timeline, drops inbox
//    parts the partner will regenerate, and queues a restore request (carried by
//    that next message, so it is delivered exactly once, in order).
//  * serve_partner_restore() handles a partner's restore request: our messages
//    it lost are regenerated from the change log (numbered on, linked by identity
//    to the last one it holds; like rescan when that identity is unknown),
//    and the rows its lost messages had brought here are sent back to it (an
//    echo window over the epochs they were applied in). When the log no longer
//    reaches back, nothing is changed and the result says to re-extract.
//  * A partner that cannot serve a restore request says so in every later message
//    (reextract); the restored site then stops asking and its status says to
//    re-extract it (note_partner_cannot_recover()).
//  * record_applied() remembers the identity of the message applied last and the
//    epoch it was applied in (for a later echo).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

Result<std::string> own_restore_evidence(Database& db, const Partner& partner,
                                         const Payload& payload);

// The partner says it cannot regenerate what this site lost (payload.reextract,
// in a message built after it saw our restore request): recorded for status.
// Returns the line to log, empty when nothing changed.
Result<std::string> note_partner_cannot_recover(Database& db, const Partner& partner,
                                                const Payload& payload);

// True when serving the partner's restore request failed: it must be
// re-extracted, and our messages say so (payload.reextract).
Result<bool> partner_needs_extract(Database& db, const std::string& site);
// True when either side of the stream with `site` needs re-extraction.
Result<bool> recovery_needs_extract(Database& db, const std::string& site);

// sqlpost_streams.recovery_ack: NULL the partner needs re-extraction, this value
// this site does, -1 we saw the partner go back and wait for it to recover, >= 1
// the recovery is done once the partner confirmed our messages up to it.
inline constexpr std::int64_t kThisSiteNeedsExtract = -2;
inline constexpr std::int64_t kWaitingForPartner = -1;

// Returns what was done, one line for the log and status.
Result<std::string> begin_own_recovery(Database& db, const Partner& partner, const Payload& payload,
                                       const std::string& evidence);

struct PartnerRecovery {
  bool needs_extract = false;  // the change log no longer reaches back
  std::string summary;         // one line for the log and status
};

// `request_seq`: the partner's message carrying the request (applied now).
Result<PartnerRecovery> serve_partner_restore(Database& db, const Partner& partner,
                                              const Payload& request, std::int64_t request_seq);

// After our messages to a restored partner were regenerated (numbered on, linked
// to the last one it held when it asked), it may have applied some of the replaced
// ones meanwhile (resent from the outbox); its acknowledgement of one (number and
// identity, kept in sqlpost_superseded) proves it, and the regenerated messages
// would never follow. They are built again from the same position and echo window,
// linked to that one: a replay of the log in order, as any regeneration. Returns
// the line to log, empty when nothing changed.
Result<std::string> relink_regenerated(Database& db, const Partner& partner,
                                       const Payload& payload);

Result<> record_applied(Database& db, const std::string& site, std::int64_t seq,
                        std::span<const std::uint8_t> identity);

// The identity that "message 0" has: a stream's first message names it as its
// predecessor, and a site that applied nothing yet holds it.
std::vector<std::uint8_t> stream_start_identity();
// The identity of the last message applied from `site` (empty: unknown).
Result<std::vector<std::uint8_t>> applied_identity(Database& db, const std::string& site);
// The identity of the message our next one (`next_seq`) follows: the last one
// we built before it (empty: unknown).
Result<std::vector<std::uint8_t>> chain_identity(Database& db, const std::string& site,
                                                 std::int64_t next_seq);
// The identity of our message `seq` to `site` (empty: unknown).
Result<std::vector<std::uint8_t>> sent_identity(Database& db, const std::string& site,
                                                std::int64_t seq);

}  // namespace sqlpost
