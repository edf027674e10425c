#include "replication/receiver.h"

#include "replication/bookkeeping.h"
#include "replication/mail_bounces.h"
#include "replication/message_control.h"
#include "replication/rekey.h"
#include "transport/dsn.h"

namespace sqlpost {

Result<bool> Receiver::is_known_foreign(const std::string& id) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("SELECT 1 FROM sqlpost_foreign_mail WHERE mail_id = ?"));
  st->bind(1, id);
  SQLPOST_TRY_ASSIGN(const bool found, st->step());
  st->reset();
  return found;
}

Result<> Receiver::remember_foreign(const std::string& id) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("INSERT OR IGNORE INTO sqlpost_foreign_mail VALUES (?, ?)"));
  st->bind(1, id).bind(2, run_.now());
  SQLPOST_TRY(st->run());
  return cap_foreign(run_.db, run_.now());
}

Result<> Receiver::reject(const transport::MailRef& ref, std::string_view mail,
                          const std::string& claimed_sender, const std::string& reason) {
  run_.report.problems.push_back(
      "rejected mail " + ref.id +
      (claimed_sender.empty() ? "" : " claiming to be from " + claimed_sender) + ": " + reason +
      " (kept in sqlpost_rejected)");
  run_.report.worst = Errc::kCorruption;
  ++run_.report.rejected;
  run_.event({.partner = claimed_sender.empty() ? "?" : claimed_sender,
              .event = "rejected",
              .bytes = static_cast<std::int64_t>(mail.size()),
              .detail = "mail " + ref.id + ": " + reason});
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY_ASSIGN(Statement * st,
                     run_.db.cached("INSERT INTO sqlpost_rejected(received_at, claimed_sender, "
                                    "reason, mail) VALUES (?, ?, ?, ?)"));
  st->bind(1, run_.now()).bind(2, claimed_sender).bind(3, reason);
  st->bind(4, Value(as_blob(mail.substr(0, kMaxRejectedMailKept))));
  SQLPOST_TRY(st->run());
  if (run_.partners.count(claimed_sender) > 0) {
    SQLPOST_TRY(run_.streams.count_rejected(claimed_sender));
  }
  SQLPOST_TRY(cap_rejected(run_.db, run_.now()));
  SQLPOST_TRY(tx.commit());
  SQLPOST_TRY(run_.crash_point("after-reject-commit"));
  return run_.remove_mail(ref);
}

Result<> Receiver::handle_control(const transport::MailRef& ref, std::string_view mail,
                                  const Partner& partner, transport::OpenedPart part) {
  std::vector<transport::OpenedPart> parts;
  parts.push_back(std::move(part));
  auto bytes = decoder_.decode_bounded(std::move(parts));
  if (!bytes.ok()) {
    return reject(ref, mail, partner.name, bytes.error().message);
  }
  auto payload = decode_payload(bytes.value(), decoder_.limits_for(bytes.value().size()));
  if (!payload.ok() || payload->kind != PayloadKind::kAckOnly) {
    return reject(ref, mail, partner.name,
                  payload.ok() ? "sequence 0 carries data" : payload.error().message);
  }
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY(process_ack(run_, partner, payload.value()));
  SQLPOST_TRY(keep_health_from(run_, partner, payload.value()));
  SQLPOST_TRY(run_.streams.set_last_received(partner.name, run_.now()));
  SQLPOST_TRY(tx.commit());
  run_.event({.partner = partner.name,
              .event = "received",
              .part = 1,
              .parts = 1,
              .bytes = static_cast<std::int64_t>(mail.size()),
              .detail = "acknowledgement of #" + std::to_string(payload->ack) +
                        (payload->resend_from > 0
                             ? ", resend from #" + std::to_string(payload->resend_from)
                             : "")});
  SQLPOST_TRY(run_.crash_point("after-control-commit"));
  return run_.remove_mail(ref);
}

Result<> Receiver::store_part(const transport::MailRef& ref, std::string_view mail,
                              const Partner& partner, const transport::OpenedPart& opened) {
  const transport::PartHeader& h = opened.header;
  const InboxMessage message{static_cast<std::int64_t>(h.sequence), digest_blob(opened.digest)};
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(run_.db));
  SQLPOST_TRY_ASSIGN(const Stream s, run_.streams.load(partner.name));
  if (static_cast<std::int64_t>(h.sequence) <= s.applied_seq) {
    ++run_.report.duplicates;  // applied already: drop it, and acknowledge again
    run_.report.details.push_back("mail " + ref.id + ": message " + std::to_string(h.sequence) +
                                  " part " + std::to_string(h.part) + " from " + partner.name +
                                  " was applied before; dropped");
    SQLPOST_TRY(run_.streams.mark_ack_owed(partner.name));
    run_.event({.partner = partner.name,
                .event = "duplicate",
                .seq = static_cast<std::int64_t>(h.sequence),
                .part = static_cast<std::int64_t>(h.part),
                .parts = static_cast<std::int64_t>(h.parts),
                .bytes = static_cast<std::int64_t>(mail.size()),
                .detail = {}});
  } else {
    ++run_.report.parts_received;
    run_.report.details.push_back("mail " + ref.id + ": message " + std::to_string(h.sequence) +
                                  " part " + std::to_string(h.part) + "/" +
                                  std::to_string(h.parts) + " from " + partner.name + " stored");
    SQLPOST_TRY(drop_other_encoding(partner, message, h.parts));
    SQLPOST_TRY(make_room_for(partner, message));
    SQLPOST_TRY_ASSIGN(
        Statement * st,
        run_.db.cached("INSERT OR IGNORE INTO sqlpost_inbox(site, seq, digest, part, "
                       "parts, mail, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    st->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
    st->bind(4, static_cast<std::int64_t>(h.part)).bind(5, static_cast<std::int64_t>(h.parts));
    st->bind(6, Value(as_blob(mail))).bind(7, run_.now());
    SQLPOST_TRY(st->run());
    run_.event({.partner = partner.name,
                .event = "received",
                .seq = static_cast<std::int64_t>(h.sequence),
                .part = static_cast<std::int64_t>(h.part),
                .parts = static_cast<std::int64_t>(h.parts),
                .bytes = static_cast<std::int64_t>(mail.size()),
                .detail = {}});
  }
  SQLPOST_TRY(run_.streams.set_last_received(partner.name, run_.now()));
  SQLPOST_TRY(tx.commit());
  SQLPOST_TRY(run_.crash_point("after-inbox-commit"));
  return run_.remove_mail(ref);
}

// Parts of the message with another part count are another encoding of it
// (sqlpost resend re-splits): the newest arrival wins, encodings are never mixed.
Result<> Receiver::drop_other_encoding(const Partner& partner, const InboxMessage& message,
                                       std::uint32_t parts) {
  SQLPOST_TRY_ASSIGN(Statement * st, run_.db.cached("DELETE FROM sqlpost_inbox WHERE site = ? AND "
                                                    "seq = ? AND digest = ? AND parts <> ?"));
  st->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
  st->bind(4, static_cast<std::int64_t>(parts));
  SQLPOST_TRY(st->run());
  if (run_.db.changes() > 0) {
    run_.report.details.push_back("dropped " + std::to_string(run_.db.changes()) +
                                  " part(s) of message " + std::to_string(message.seq) + " from " +
                                  partner.name + " of an older encoding (now " +
                                  std::to_string(parts) + " parts)");
  }
  return success();
}

// Another message under a number already waiting here keeps what is there, up
// to kMaxMessagesPerNumber; beyond, the one that arrived first gives way.
Result<> Receiver::make_room_for(const Partner& partner, const InboxMessage& message) {
  SQLPOST_TRY_ASSIGN(
      Statement * count,
      run_.db.cached("SELECT count(DISTINCT digest) FROM sqlpost_inbox WHERE site = ? "
                     "AND seq = ? AND digest <> ?"));
  count->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
  SQLPOST_TRY(count->step());
  const std::int64_t others = count->column_int(0);
  count->reset();
  if (others < kMaxMessagesPerNumber) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(
      Statement * oldest,
      run_.db.cached("DELETE FROM sqlpost_inbox WHERE site = ?1 AND seq = ?2 AND "
                     "digest = (SELECT digest FROM sqlpost_inbox WHERE site = ?1 AND "
                     "seq = ?2 AND digest <> ?3 GROUP BY digest ORDER BY "
                     "min(received_at) LIMIT 1)"));
  oldest->bind(1, partner.name).bind(2, message.seq).bind(3, Value(message.digest));
  return oldest->run();
}

Result<> Receiver::handle_sqlpost_mail(const transport::MailRef& ref, const std::string& mail) {
  auto header = transport::peek_part(mail);
  if (!header.ok()) {
    return reject(ref, mail, "", header.error().message);
  }
  const auto found = run_.partners.find(header->sender);
  if (found == run_.partners.end()) {
    return reject(ref, mail, header->sender, "from unknown site '" + header->sender + "'");
  }
  if (header->receiver != run_.local.name) {
    return reject(ref, mail, header->sender,
                  "addressed to site '" + header->receiver + "', not this site");
  }
  const Partner& partner = found->second;
  SQLPOST_TRY_ASSIGN(const PairKeys keys, opening_keys(run_.db, partner.name));
  auto opened = open_with_pair_keys(mail, keys, run_.local.name);
  if (!opened.ok()) {
    return reject(ref, mail, partner.name, opened.error().message);
  }
  if (header->sequence == 0) {
    return handle_control(ref, mail, partner, std::move(opened).value());
  }
  return store_part(ref, mail, partner, opened.value());
}

Result<> Receiver::receive_one(const transport::MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const bool foreign, is_known_foreign(ref.id));
  if (foreign) {
    ++run_.report.foreign;
    return success();
  }
  auto mail = run_.link.fetch(ref);
  if (!mail.ok() && mail.error().code == Errc::kLimitExceeded) {
    return handle_oversize(ref, mail.error());
  }
  if (!mail.ok()) {
    note(run_.report, mail.error(), "reading mail " + ref.id + " (left in the mailbox)");
    return success();
  }
  ++run_.report.mails_seen;
  if (!transport::looks_like_sqlpost(mail.value())) {
    if (const auto bounce = transport::parse_bounce(mail.value())) {
      SQLPOST_TRY_ASSIGN(const bool ours, handle_bounce(run_, ref, *bounce));
      if (ours) {
        return success();
      }
    }
    ++run_.report.foreign;
    return remember_foreign(ref.id);
  }
  return handle_sqlpost_mail(ref, mail.value());
}

// Mail over kMaxMailBytes: sqlpost's (by its head) is recorded, headers only, and
// removed; foreign mail is left alone and remembered, so it is counted once and
// does not change the exit code of later runs.
Result<> Receiver::handle_oversize(const transport::MailRef& ref, const Error& why) {
  auto head = run_.link.fetch_head(ref, transport::kMaxHeaderBlockBytes);
  if (head.ok() && transport::looks_like_sqlpost(head.value())) {
    const std::string& text = head.value();
    const auto end = text.find("\r\n\r\n");
    const std::string headers = end == std::string::npos ? text : text.substr(0, end + 2);
    auto peeked = transport::peek_part(text);
    return reject(ref, headers, peeked.ok() ? peeked->sender : std::string(),
                  "mail of " + std::to_string(ref.size) + " bytes is larger than the limit (" +
                      why.message + "); headers kept");
  }
  ++run_.report.foreign;
  run_.report.notes.push_back("mail " + ref.id + " of " + std::to_string(ref.size) +
                              " bytes is not sqlpost's and over the size limit; left in the "
                              "mailbox and not read again");
  SQLPOST_TRY(count_dropped_oversize());
  return remember_foreign(ref.id);
}

Result<> Receiver::count_dropped_oversize() {
  SQLPOST_TRY_ASSIGN(
      Statement * st,
      run_.db.cached("INSERT INTO sqlpost_meta(key, value) VALUES "
                     "('oversize_foreign', 1) ON CONFLICT(key) DO UPDATE SET value = "
                     "ifnull(value, 0) + 1"));
  return st->run();
}

}  // namespace sqlpost
