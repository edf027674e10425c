// sqlpost/replication/rekey.h — rotating the key of one pair of sites through
// their ordered, authenticated message stream (docs/protocol.md, "Key rotation").
//
// Contract: sqlpost_sites.key is always the key this site seals its *new* messages
// to a partner with; sqlpost_rekey holds at most one rotation per partner:
//  * 'offered' (this site started it): the new key waits in new_key; our next data
//    message carries it (a RekeyRecord kOffer, sealed under the current key) and
//    offer_seq records that message's number. Mail from the partner may already be
//    sealed under the new key.
//  * 'switched': this site applied the partner's kSwitched record naming the key
//    we offered (initiator: the offer's acknowledgement) or applied the partner's
//    offer (responder); sqlpost_sites.key is the new key, the replaced one waits
//    in old_key for mail sealed before the switch. Our next data message carries a
//    kSwitched record (marker_seq); old_until is the last of our messages sealed
//    under the old key.
//  * 'done': the old key was forgotten (both keys set to NULL), once our kSwitched
//    record is in the outbox, the partner's was applied here and the partner
//    acknowledged every message of ours up to old_until.
// Mail from the partner is opened under each key of opening_keys() in turn. Keys
// are never written to logs, reports or errors: key_id() names one without
// revealing it. The engine hooks run inside the caller's transaction and report
// what happened through RunContext::report.notes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"
#include "transport/codec.h"
#include "transport/key.h"

namespace sqlpost {

struct RunContext;

// ---- keys
// kKeyIdBytes naming a key (an HMAC of a fixed text under it), not revealing it.
std::vector<std::uint8_t> key_id(const transport::Key& key);

// Every key mail from a partner may be sealed under, the sealing key first; `hint`
// explains an authentication failure when a rotation ran with the partner.
struct PairKeys {
  std::vector<transport::Key> keys;
  std::string hint;
};
// Errc::kConfig when the partner has no valid key; kNotFound for an unknown site.
Result<PairKeys> opening_keys(Database& db, const std::string& site);
// open_part under each key in turn; a failure under every key is the last error,
// with the hint appended to an authentication failure.
Result<transport::OpenedPart> open_with_pair_keys(std::string_view mail, const PairKeys& keys,
                                                  std::string_view expected_receiver);

// ---- the command and status
struct RekeyState {
  std::string state;  // "" (never rotated), "offered", "switched", "done"
  bool initiator = false;
  std::int64_t offer_seq = 0;
  std::int64_t old_until = 0;
  std::int64_t marker_seq = 0;
  bool partner_switched = false;
  std::int64_t started_at = 0;
  std::int64_t switched_at = 0;
  std::int64_t done_at = 0;
};
Result<RekeyState> load_rekey_state(Database& db, const std::string& site);
// Starts a rotation with `site` (caller holds a write transaction): a fresh key
// from RAND_bytes waits in new_key for the next message. kNotFound for an unknown
// site; kAlreadyExists while a rotation with it is not done.
Result<> start_rekey(Database& db, const std::string& site, std::int64_t now);
// The manual way (`sqlpost site key --import`), for a pair whose sites no longer
// share a key (a site restored from a backup older than a rotation): `key` becomes
// the pair key, the outbox to `site` is sealed again under it, inbox parts that do
// not open under it are dropped (the partner sends them again) and any rotation
// with `site` is forgotten. Caller holds a write transaction. Returns the number
// of inbox parts dropped.
Result<std::int64_t> set_pair_key(Database& db, const std::string& site, const transport::Key& key,
                                  std::size_t max_message_bytes);

// One line for `status`: what the rotation waits for ("" when none ran).
std::string describe_rekey(const RekeyState& s);

// ---- engine hooks
// Preparer: puts the record this site owes the partner into `payload`; true when
// a message must be written for it even without changes.
Result<bool> add_rekey_record(RunContext& run, const Partner& partner, Payload& payload);
// Preparer: our message `seq` carrying payload.rekey is in the outbox.
Result<> note_rekey_prepared(RunContext& run, const Partner& partner, std::int64_t seq,
                             const Payload& payload);
// process_ack: the partner acknowledged more of our messages (any message); the
// old key may now be forgotten.
Result<> rekey_after_ack(RunContext& run, const Partner& partner);
// Applier, in the apply transaction after process_ack: the partner's record, if
// any. Errc::kAuthentication (the message is not applied; its stream stops) for a
// record about another pair than (partner, this site).
Result<> apply_rekey_record(RunContext& run, const Partner& partner, const Payload& payload);

}  // namespace sqlpost
