#include "replication/outbox.h"

#include <chrono>

#include "replication/rekey.h"
#include "replication/run_context.h"
#include "schema/metadata.h"
#include "transport/codec.h"
#include "transport/message_stream.h"

namespace sqlpost {
namespace {

// Which of the pair's keys `mail` (one of our parts) was sealed under.
Result<transport::Key> sealed_under(std::string_view mail, const PairKeys& keys,
                                    std::string_view receiver) {
  for (const auto& key : keys.keys) {
    if (transport::open_part(mail, key, receiver).ok()) {
      return key;
    }
  }
  return make_error(Errc::kAuthentication, "no key of the pair opens it");
}

Result<std::vector<std::int64_t>> waiting_messages(Database& db, const std::string& site,
                                                   std::int64_t from) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT DISTINCT seq FROM sqlpost_outbox WHERE "
                                              "site = ? AND seq >= ? ORDER BY seq"));
  st.bind(1, site).bind(2, from);
  std::vector<std::int64_t> seqs;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    seqs.push_back(st.column_int(0));
  }
  return seqs;
}

// The stored parts of one message, opened in part order, as a supplier.
transport::PartSupplier stored_parts(Statement& st, const Partner& partner, const PairKeys& keys,
                                     std::int64_t seq) {
  return [&st, &partner, &keys, seq]() -> Result<std::optional<transport::OpenedPart>> {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return std::optional<transport::OpenedPart>{};
    }
    auto part = open_with_pair_keys(blob_text(st.column(0)), keys, partner.name);
    if (!part.ok()) {
      return make_error(part.error().code, "message " + std::to_string(seq) + " to " +
                                               partner.name +
                                               " does not open: " + part.error().message);
    }
    return std::optional<transport::OpenedPart>{std::move(part).value()};
  };
}

// The envelope of the message's first stored part: |C| and its digest; `sealed`
// becomes the key the parts were sealed under (during a key rotation, the old or the
// new one).
Result<transport::CompressedMessage> stored_message(Database& db, const Partner& partner,
                                                    const PairKeys& keys, std::int64_t seq,
                                                    transport::Key& sealed) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT mail FROM sqlpost_outbox WHERE site = ? "
                                              "AND seq = ? ORDER BY part LIMIT 1"));
  st.bind(1, partner.name).bind(2, seq);
  SQLPOST_TRY_ASSIGN(auto first, stored_parts(st, partner, keys, seq)());
  if (!first) {
    return make_error(Errc::kNotFound, "message " + std::to_string(seq) + " has no parts");
  }
  SQLPOST_TRY_ASSIGN(sealed, sealed_under(blob_text(st.column(0)), keys, partner.name));
  return transport::CompressedMessage{first->compressed_size, first->digest};
}

// The same compressed bytes C, split again: the message keeps its identity.
// The new parts wait in a temporary table until the old ones are gone.
Result<std::int64_t> resplit(Database& db, const LocalSite& local, const Partner& partner,
                             const PairKeys& keys, std::int64_t seq, std::size_t max_message_bytes,
                             std::int64_t now, const std::optional<transport::Key>& reseal_under) {
  transport::Key key;
  SQLPOST_TRY_ASSIGN(const transport::CompressedMessage message,
                     stored_message(db, partner, keys, seq, key));
  if (reseal_under) {
    key = *reseal_under;
  }
  SQLPOST_TRY(
      db.exec("CREATE TEMP TABLE IF NOT EXISTS sqlpost_resplit(part INTEGER PRIMARY KEY, "
              "parts INTEGER, mail BLOB)"));
  SQLPOST_TRY(db.exec("DELETE FROM temp.sqlpost_resplit"));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT mail FROM sqlpost_outbox WHERE site = ? "
                                              "AND seq = ? ORDER BY part"));
  st.bind(1, partner.name).bind(2, seq);
  transport::CompressedParts compressed(stored_parts(st, partner, keys, seq));
  SQLPOST_TRY_ASSIGN(Statement ins, db.prepare("INSERT INTO temp.sqlpost_resplit(part, parts, "
                                               "mail) VALUES (?, ?, ?)"));
  SQLPOST_TRY_ASSIGN(const std::uint32_t parts,
                     transport::encode_parts(
                         {local.name, partner.name, static_cast<std::uint64_t>(seq)}, local.address,
                         partner.address, message, compressed, key, max_message_bytes,
                         [&](std::uint32_t part, std::uint32_t count, const std::string& mail) {
                           ins.bind(1, static_cast<std::int64_t>(part));
                           ins.bind(2, static_cast<std::int64_t>(count));
                           ins.bind(3, Value(as_blob(mail)));
                           return ins.run();
                         }));
  st.reset();
  SQLPOST_TRY_ASSIGN(Statement del,
                     db.prepare("DELETE FROM sqlpost_outbox WHERE site = ? AND seq = ?"));
  del.bind(1, partner.name).bind(2, seq);
  SQLPOST_TRY(del.run());
  SQLPOST_TRY_ASSIGN(Statement copy,
                     db.prepare("INSERT INTO sqlpost_outbox(site, seq, part, parts, mail, "
                                "created_at) SELECT ?, ?, part, parts, mail, ? FROM "
                                "temp.sqlpost_resplit ORDER BY part"));
  copy.bind(1, partner.name).bind(2, seq).bind(3, now);
  SQLPOST_TRY(copy.run());
  SQLPOST_TRY(db.exec("DELETE FROM temp.sqlpost_resplit"));
  return static_cast<std::int64_t>(parts);
}

Result<std::int64_t> part_count(Database& db, const std::string& site, std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT count(*) FROM sqlpost_outbox WHERE site = ? "
                                              "AND seq = ?"));
  st.bind(1, site).bind(2, seq);
  SQLPOST_TRY(st.step());
  return st.column_int(0);
}

}  // namespace

Result<ReencodeSummary> reencode_outbox(Database& db, const std::string& site, std::int64_t from,
                                        std::size_t max_message_bytes) {
  return reencode_outbox(db, site, from, max_message_bytes, std::nullopt);
}

Result<ReencodeSummary> reencode_outbox(Database& db, const std::string& site, std::int64_t from,
                                        std::size_t max_message_bytes,
                                        const std::optional<transport::Key>& reseal_under) {
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, site));
  SQLPOST_TRY_ASSIGN(const PairKeys keys, opening_keys(db, partner.name));
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  ReencodeSummary summary;
  SQLPOST_TRY_ASSIGN(const auto seqs, waiting_messages(db, site, from));
  for (const std::int64_t seq : seqs) {
    SQLPOST_TRY_ASSIGN(const std::int64_t before, part_count(db, site, seq));
    SQLPOST_TRY_ASSIGN(const std::int64_t after, resplit(db, local, partner, keys, seq,
                                                         max_message_bytes, now, reseal_under));
    ++summary.messages;
    summary.parts_before += before;
    summary.parts_after += after;
  }
  return summary;
}

}  // namespace sqlpost
