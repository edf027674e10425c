#include "replication/applier.h"

#include <algorithm>
#include <limits>

#include "replication/authorize.h"
#include "replication/bookkeeping.h"
#include "replication/changelog.h"
#include "replication/conflicts.h"
#include "replication/message_control.h"
#include "replication/origin.h"
#include "replication/rekey.h"
#include "replication/restore.h"
#include "replication/routing.h"
#include "replication/subsets.h"
#include "schema/metadata.h"

namespace sqlpost {

// Does message `seq` continue the partner's stream we applied? A message that
// names another predecessor comes from a timeline of the partner we did not
// follow (it was restored from a backup and sent on): it is dropped, and our
// acknowledgement (naming what we applied) lets the partner find out and recover.
Result<bool> Applier::follows_applied(const Partner& partner, const InboxMessage& message,
                                      const LoadedMessage& loaded) {
  const Payload& payload = loaded.payload;
  const std::int64_t seq = message.seq;
  if (payload.prev_digest.empty()) {
    return true;  // an older sender, or a predecessor it no longer knows
  }
  SQLPOST_TRY_ASSIGN(const auto applied, applied_identity(run_.db, partner.name));
  if (applied.empty() || applied == payload.prev_digest) {
    return true;
  }
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY(inbox_.delete_inbox_message(partner, message));
  SQLPOST_TRY(remember_abandoned(partner, loaded.identity));
  const std::string why = "message " + std::to_string(seq) + " from " + partner.name +
                          " does not follow its message " + std::to_string(seq - 1) +
                          " applied here: that site went back in time (restored from a "
                          "backup?); dropped, and our acknowledgement tells it to recover";
  SQLPOST_TRY(run_.streams.mark_ack_owed(partner.name));
  SQLPOST_TRY(run_.streams.wait_for_partner_recovery(partner.name, why));
  SQLPOST_TRY(tx.commit());
  run_.report.notes.push_back(why);
  run_.event({.partner = partner.name, .event = "duplicate", .seq = seq, .detail = why});
  return false;
}

// The identities of the partner's messages dropped as not continuing its stream
// (the newest kMaxAbandonedKept): a message naming one of them as its predecessor
// is of the same abandoned timeline, and nothing the partner sends later can be.
Result<> Applier::remember_abandoned(const Partner& partner,
                                     std::span<const std::uint8_t> identity) {
  constexpr std::int64_t kMaxAbandonedKept = 64;
  SQLPOST_TRY_ASSIGN(Statement * add,
                     run_.db.cached("INSERT OR REPLACE INTO sqlpost_abandoned(site, digest, at) "
                                    "SELECT ?1, ?2, ifnull(max(at), 0) + 1 FROM sqlpost_abandoned "
                                    "WHERE site = ?1"));
  add->bind(1, partner.name).bind(2, Value(Blob{{identity.begin(), identity.end()}}));
  SQLPOST_TRY(add->run());
  SQLPOST_TRY_ASSIGN(
      Statement * trim,
      run_.db.cached("DELETE FROM sqlpost_abandoned WHERE site = ?1 AND at <= (SELECT "
                     "max(at) FROM sqlpost_abandoned WHERE site = ?1) - ?2"));
  trim->bind(1, partner.name).bind(2, kMaxAbandonedKept);
  return trim->run();
}

Result<bool> Applier::follows_abandoned(const Partner& partner, const Payload& payload) {
  SQLPOST_TRY_ASSIGN(Statement * st, run_.db.cached("SELECT count(*) FROM sqlpost_abandoned WHERE "
                                                    "site = ? AND digest = ?"));
  st->bind(1, partner.name)
      .bind(2, Value(Blob{{payload.prev_digest.begin(), payload.prev_digest.end()}}));
  SQLPOST_TRY(st->step());
  const bool found = st->column_int(0) > 0;
  st->reset();
  return found;
}

// A message waiting behind a gap whose predecessor was abandoned: its own
// predecessor will never come.
Result<> Applier::drop_abandoned(const Partner& partner, const InboxMessage& message,
                                 const LoadedMessage& loaded) {
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY(inbox_.delete_inbox_message(partner, message));
  SQLPOST_TRY(remember_abandoned(partner, loaded.identity));
  SQLPOST_TRY(tx.commit());
  const std::string why = "message " + std::to_string(message.seq) + " from " + partner.name +
                          " follows one it abandoned (restored from a backup); dropped";
  run_.report.notes.push_back(why);
  run_.event({.partner = partner.name, .event = "duplicate", .seq = message.seq, .detail = why});
  return success();
}

Result<> Applier::discard_message(const Partner& partner, const InboxMessage& message,
                                  const std::string& why) {
  const std::int64_t seq = message.seq;
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY_ASSIGN(Statement st,
                     run_.db.prepare("INSERT INTO sqlpost_rejected(received_at, claimed_sender, "
                                     "reason, mail) SELECT ?, site, ?, substr(mail, 1, ?) FROM "
                                     "sqlpost_inbox WHERE site = ? AND seq = ? AND digest = ? "
                                     "ORDER BY part"));
  st.bind(1, run_.now()).bind(2, why).bind(3, static_cast<std::int64_t>(kMaxRejectedMailKept));
  st.bind(4, partner.name).bind(5, seq).bind(6, Value(message.digest));
  SQLPOST_TRY(st.run());
  SQLPOST_TRY(inbox_.delete_inbox_message(partner, message));
  SQLPOST_TRY(run_.streams.count_rejected(partner.name));
  SQLPOST_TRY(cap_rejected(run_.db, run_.now()));
  SQLPOST_TRY(tx.commit());
  run_.event({.partner = partner.name, .event = "rejected", .seq = seq, .detail = why});
  return success();
}

Result<> Applier::halt(const Partner& partner, const Error& e) {
  const bool refused = e.code == Errc::kAuthentication;
  run_.report.problems.push_back(
      "stopped applying messages from " + partner.name + ": " + e.message +
      (refused ? " (the message stays in the inbox; find out why that site sends it: a "
                 "stolen or compromised machine, or a subscription changed here)"
               : " (fix the schema, then run again)"));
  run_.report.worst = e.code;
  run_.event({.partner = partner.name, .event = "stopped", .detail = e.message});
  return run_.streams.halt(partner.name, e.message);
}

// A site decides the conflicts of changes from its children and follows its parent.
Result<ApplyContext> Applier::apply_context(const Partner& partner) {
  ApplyContext context;
  context.local_site = run_.local.name;
  context.from_site = partner.name;
  context.decides = partner.relation == Relation::kChild;
  context.now = run_.now();
  SQLPOST_TRY_ASSIGN(const auto articles, load_articles(run_.db));
  for (const auto& a : articles) {
    SQLPOST_TRY_ASSIGN(ConflictPolicy policy, parse_conflict_policy(a.conflict));
    context.policies.emplace(a.table, std::move(policy));
  }
  // What the partner may change is this site's own decision (docs/security.md).
  SQLPOST_TRY_ASSIGN(context.authorization, authorization_for(run_.db, partner));
  if (partner.relation == Relation::kChild) {
    SQLPOST_TRY_ASSIGN(context.subset, SubsetFilter::load(run_.db, partner));
  }
  return context;
}

// The last epoch of ours the partner had applied when it built a message with `ack`.
Result<std::int64_t> Applier::epoch_seen_by(const Partner& partner, std::uint64_t ack) {
  if (ack == 0) {
    return std::int64_t{0};
  }
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("SELECT coalesce((SELECT max(to_epoch) FROM sqlpost_sent WHERE "
                                    "site = ?1 AND seq <= ?2), (SELECT min(from_epoch) FROM "
                                    "sqlpost_sent WHERE site = ?1), ?3)"));
  st->bind(1, partner.name).bind(2, static_cast<std::int64_t>(ack)).bind(3, partner.sent_epoch);
  SQLPOST_TRY(st->step());
  const std::int64_t epoch = st->column_int(0);
  st->reset();
  return epoch;
}

// Columns this site changed (itself or through its children) after `seen_epoch`,
// each with the value this site gave it last (markers "*" and "+": NULL).
Result<PendingColumns> Applier::pending_columns(const Partner& parent, std::int64_t seen_epoch) {
  PendingColumns pending;
  SQLPOST_TRY_ASSIGN(const auto tables, tables_routed_to(run_.db, parent));
  SQLPOST_TRY(read_changes_since(run_.db, seen_epoch, tables, [&](const Change& c) {
    if (c.origin == parent.name || is_article_rows_origin(c.origin)) {  // not changes of ours
      return success();
    }
    const Row key = c.key();
    if (c.op == ChangeOp::kDelete) {
      pending[row_column_key(c.table(), key, "*")] = Value();
      pending.erase(row_column_key(c.table(), key, "+"));
      return success();
    }
    if (c.op == ChangeOp::kInsert) {
      pending.erase(row_column_key(c.table(), key, "*"));
      pending[row_column_key(c.table(), key, "+")] = Value();  // a row the parent has not seen
      for (std::size_t i = c.layout->key_count; i < c.layout->columns.size(); ++i) {
        pending[row_column_key(c.table(), key, c.layout->columns[i])] = c.new_values[i];
      }
      return success();
    }
    for (const auto i : c.changed_columns()) {
      pending[row_column_key(c.table(), key, c.layout->columns[i])] = c.new_values[i];
    }
    return success();
  }));
  return pending;
}

// The message's changes: decoded already (versions 1-3), or streamed from its
// inbox parts batch by batch into one apply session (version 4). A stream that
// turns out malformed part-way sets `unreadable`: the caller's transaction rolls
// back and the message is set aside, as one that could not be decoded at all.
Result<ApplyStats> Applier::apply_changes(const Partner& partner, const LoadedMessage& message,
                                          const ApplyContext& context, const InboxMessage& next,
                                          bool& unreadable) {
  if (!message.streamed) {
    return apply_payload(run_.db, message.payload, context);
  }
  SQLPOST_TRY_ASSIGN(ApplySession session, ApplySession::begin(run_.db, context));
  SQLPOST_TRY_ASSIGN(auto stream, inbox_.stream_message(partner, next));
  const auto read = [&](Payload& batch) -> Result<bool> {
    auto more = stream->reader().next(batch, kApplyBatchChanges);
    unreadable = !more.ok();
    return more;
  };
  SQLPOST_TRY(stream->reader().head());
  Payload batch;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool more, read(batch));
    if (!more) {
      break;
    }
    SQLPOST_TRY(session.apply(batch));
    SQLPOST_TRY(run_.crash_point("after-apply-batch"));
  }
  return session.finish();
}

Result<> Applier::apply_in_transaction(const Partner& partner, const InboxMessage& next,
                                       const LoadedMessage& message, bool& unreadable) {
  const std::int64_t seq = next.seq;
  const Payload& payload = message.payload;
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY_ASSIGN(OriginMark mark, OriginMark::set(run_.db, partner.name));
  SQLPOST_TRY_ASSIGN(ApplyContext context, apply_context(partner));
  if (partner.relation == Relation::kParent) {
    SQLPOST_TRY_ASSIGN(const std::int64_t seen, epoch_seen_by(partner, payload.ack));
    SQLPOST_TRY_ASSIGN(context.pending, pending_columns(partner, seen));
  }
  SQLPOST_TRY_ASSIGN(const ApplyStats stats,
                     apply_changes(partner, message, context, next, unreadable));
  SQLPOST_TRY(process_ack(run_, partner, payload));
  SQLPOST_TRY(apply_rekey_record(run_, partner, payload));
  SQLPOST_TRY(keep_health_from(run_, partner, payload));
  SQLPOST_TRY(run_.streams.note_seen_ack(partner.name, static_cast<std::int64_t>(payload.ack)));
  SQLPOST_TRY(run_.streams.record_applied_seq(partner.name, seq));
  SQLPOST_TRY(record_applied(run_.db, partner.name, seq, message.identity));
  if (payload.restored_from > 0) {
    SQLPOST_TRY_ASSIGN(const PartnerRecovery recovery,
                       serve_partner_restore(run_.db, partner, payload, seq));
    if (recovery.needs_extract) {
      run_.report.problems.push_back(recovery.summary);
      run_.report.worst = Errc::kNotFound;
    } else {
      run_.report.notes.push_back(recovery.summary);
    }
    run_.event(
        {.partner = partner.name, .event = "restored", .seq = seq, .detail = recovery.summary});
  }
  SQLPOST_TRY_ASSIGN(Statement * del,
                     run_.db.cached("DELETE FROM sqlpost_inbox WHERE site = ? AND seq <= ?"));
  del->bind(1, partner.name).bind(2, seq);
  SQLPOST_TRY(del->run());
  SQLPOST_TRY(mark.clear());
  SQLPOST_TRY(run_.crash_point("before-apply-commit"));
  SQLPOST_TRY(tx.commit());
  ++run_.report.messages_applied;
  run_.event({.partner = partner.name,
              .event = "applied",
              .seq = seq,
              .changes = static_cast<std::int64_t>(stats.inserted + stats.updated + stats.deleted +
                                                   stats.missing),
              .conflicts = static_cast<std::int64_t>(stats.conflicts),
              .detail = {}});
  run_.report.details.push_back("applied message " + std::to_string(seq) + " from " + partner.name +
                                ": " + std::to_string(stats.inserted) + " inserted, " +
                                std::to_string(stats.updated) + " updated, " +
                                std::to_string(stats.deleted) + " deleted, " +
                                std::to_string(stats.missing) + " missing rows");
  if (stats.refused > 0) {
    // Also a race (the row moved away here meanwhile), hence a note, not a problem.
    run_.report.notes.push_back(std::to_string(stats.refused) + " change(s) in message " +
                                std::to_string(seq) + " from " + partner.name +
                                " touched rows outside its subset and were not applied "
                                "(sqlpost conflicts DB)");
  }
  if (stats.conflicts > 0) {
    run_.report.notes.push_back(std::to_string(stats.conflicts) + " conflict(s) in message " +
                                std::to_string(seq) + " from " + partner.name +
                                " recorded (sqlpost conflicts DB)");
  }
  run_.report.changes_applied += stats.inserted + stats.updated + stats.deleted + stats.missing;
  return success();
}

// Does the message name `identity` (the message applied last) as its predecessor?
bool Applier::continues(const Partner& partner, const InboxMessage& message,
                        const std::vector<std::uint8_t>& identity) {
  auto loaded = inbox_.load_message(partner, message);
  return loaded.ok() && loaded->payload.prev_digest == identity;
}

// The message to apply next (none yet: nullopt): applied_seq + 1 when complete
// (of two under that number, the one that continues what was applied), else the
// first later complete message that names the one applied last as its
// predecessor. A partner that regenerates its stream after a restore numbers on
// instead of reusing numbers, so mail of the abandoned numbering still in flight
// can never be taken for the new one.
Result<std::optional<InboxMessage>> Applier::next_applicable(const Partner& partner,
                                                             std::int64_t applied) {
  SQLPOST_TRY_ASSIGN(const auto next, inbox_.complete_messages(partner.name, applied + 1,
                                                               applied + 1, kMaxMessagesPerNumber));
  if (next.size() == 1) {
    return std::optional<InboxMessage>{next.front()};
  }
  SQLPOST_TRY_ASSIGN(const auto identity, applied_identity(run_.db, partner.name));
  if (!next.empty()) {
    const auto found = std::ranges::find_if(
        next, [&](const InboxMessage& m) { return continues(partner, m, identity); });
    // None does: follows_applied() drops the first.
    return std::optional<InboxMessage>{found == next.end() ? next.front() : *found};
  }
  if (identity.empty()) {
    return std::optional<InboxMessage>{};
  }
  // Bounded: the abandoned numbers still in flight are few; a long normal gap is
  // not decoded over and over.
  constexpr std::int64_t kMaxCandidates = 16;
  SQLPOST_TRY_ASSIGN(
      const auto later,
      inbox_.complete_messages(partner.name, applied + 2, std::numeric_limits<std::int64_t>::max(),
                               kMaxCandidates));
  for (const InboxMessage& candidate : later) {
    auto loaded = inbox_.load_message(partner, candidate);
    if (!loaded.ok()) {
      continue;  // set aside when its turn comes
    }
    SQLPOST_TRY_ASSIGN(const bool stale, follows_abandoned(partner, loaded->payload));
    if (stale) {
      SQLPOST_TRY(drop_abandoned(partner, candidate, loaded.value()));
      continue;
    }
    if (loaded->payload.prev_digest == identity) {
      run_.report.notes.push_back("message " + std::to_string(candidate.seq) + " from " +
                                  partner.name + " continues its message " +
                                  std::to_string(applied) +
                                  " applied here (the numbers in between were abandoned after a "
                                  "restore from a backup)");
      return std::optional<InboxMessage>{candidate};
    }
  }
  return std::optional<InboxMessage>{};  // a gap, or only messages the partner abandoned
}

// Set aside (sqlpost_rejected), never retried: it would fail the same way.
Result<> Applier::set_aside(const Partner& partner, const InboxMessage& message, const Error& e) {
  note(run_.report, e,
       "message " + std::to_string(message.seq) + " from " + partner.name +
           " set aside in sqlpost_rejected");
  // Whatever the cause (limits, parts of different messages, bad CBOR): received
  // input was rejected, exit code 5.
  run_.report.worst = Errc::kCorruption;
  return discard_message(partner, message, e.message);
}

// Applies the next message from partner if complete; true when one was applied
// or dropped (look again).
Result<bool> Applier::apply_next(const Partner& partner) {
  SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
  SQLPOST_TRY_ASSIGN(const auto next, next_applicable(partner, s.applied_seq));
  if (!next) {
    return false;
  }
  auto payload = inbox_.load_message(partner, *next);
  if (!payload.ok() && payload.error().code == Errc::kUnsupported) {
    SQLPOST_TRY(halt(partner, payload.error()));  // a newer sqlpost: keep it, stop here
    return false;
  }
  if (payload.ok()) {
    SQLPOST_TRY_ASSIGN(const bool follows, follows_applied(partner, *next, payload.value()));
    if (!follows) {
      return true;  // dropped: another message under that number, or one after it
    }               // that follows the dropped one, may be waiting
  }
  if (!payload.ok()) {
    SQLPOST_TRY(set_aside(partner, *next, payload.error()));
    return false;
  }
  bool unreadable = false;
  auto applied = apply_in_transaction(partner, *next, payload.value(), unreadable);
  if (!applied.ok()) {
    if (applied.error().message.rfind("injected crash", 0) == 0) {
      return applied.take_error();
    }
    if (unreadable) {
      SQLPOST_TRY(set_aside(partner, *next, applied.error()));
      return false;
    }
    SQLPOST_TRY(halt(partner, applied.error()));
    return false;
  }
  return true;
}

Result<> Applier::watch_gap(const Partner& partner) {
  SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
  // Any part waiting — of a later message, or only some parts of the next one
  // (also the newest) — means applied_seq + 1 is incomplete: a gap.
  SQLPOST_TRY_ASSIGN(Statement * st, run_.db.cached("SELECT count(*) FROM sqlpost_inbox WHERE site "
                                                    "= ? AND seq > ?"));
  st->bind(1, partner.name).bind(2, s.applied_seq);
  SQLPOST_TRY(st->step());
  const bool waiting = st->column_int(0) > 0;
  st->reset();
  if (!waiting || !s.halted.empty()) {
    return success();
  }
  if (s.gap_since == 0) {
    return run_.streams.set_gap_since(partner.name, run_.now());
  }
  const bool patient_enough = run_.now() - s.gap_since >= run_.options.gap_patience;
  const bool not_too_often = s.resend_requested_at == 0 ||
                             run_.now() - s.resend_requested_at >= run_.options.resend_interval;
  if (patient_enough && not_too_often && s.resend_from == 0) {
    run_.report.notes.push_back("message " + std::to_string(s.applied_seq + 1) + " from " +
                                partner.name + " is missing; asking for a resend");
    return run_.streams.set_resend_from(partner.name, s.applied_seq + 1);
  }
  return success();
}

}  // namespace sqlpost
