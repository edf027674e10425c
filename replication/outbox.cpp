#include "replication/outbox.h"

#include <chrono>

#include "replication/run_context.h"
#include "schema/metadata.h"
#include "transport/codec.h"
#include "transport/message_stream.h"

namespace sqlpost {
namespace {

Result<transport::Key> pair_key(const Partner& p) {
  if (p.key.size() != transport::Key::kBytes) {
    return make_error(Errc::kConfig, "site '" + p.name + "' has no valid key");
  }
  transport::Key::Bytes bytes{};
  std::copy(p.key.begin(), p.key.end(), bytes.begin());
  return transport::Key(bytes);
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
transport::PartSupplier stored_parts(Statement& st, const Partner& partner,
                                     const transport::Key& key, std::int64_t seq) {
  return [&st, &partner, &key, seq]() -> Result<std::optional<transport::OpenedPart>> {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return std::optional<transport::OpenedPart>{};
    }
    auto part = transport::open_part(blob_text(st.column(0)), key, partner.name);
    if (!part.ok()) {
      return make_error(part.error().code, "message " + std::to_string(seq) + " to " +
                                               partner.name +
                                               " does not open: " + part.error().message);
    }
    return std::optional<transport::OpenedPart>{std::move(part).value()};
  };
}

// The envelope of the message's first stored part: |C| and its digest.
Result<transport::CompressedMessage> stored_message(Database& db, const Partner& partner,
                                                    const transport::Key& key, std::int64_t seq) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT mail FROM sqlpost_outbox WHERE site = ? "
                                              "AND seq = ? ORDER BY part LIMIT 1"));
  st.bind(1, partner.name).bind(2, seq);
  SQLPOST_TRY_ASSIGN(auto first, stored_parts(st, partner, key, seq)());
  if (!first) {
    return make_error(Errc::kNotFound, "message " + std::to_string(seq) + " has no parts");
  }
  return transport::CompressedMessage{first->compressed_size, first->digest};
}

// The same compressed bytes C, split again: the message keeps its identity.
// The new parts wait in a temporary table until the old ones are gone.
Result<std::int64_t> resplit(Database& db, const LocalSite& local, const Partner& partner,
                             const transport::Key& key, std::int64_t seq,
                             std::size_t max_message_bytes, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(const transport::CompressedMessage message,
                     stored_message(db, partner, key, seq));
  SQLPOST_TRY(
      db.exec("CREATE TEMP TABLE IF NOT EXISTS sqlpost_resplit(part INTEGER PRIMARY KEY, "
              "parts INTEGER, mail BLOB)"));
  SQLPOST_TRY(db.exec("DELETE FROM temp.sqlpost_resplit"));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT mail FROM sqlpost_outbox WHERE site = ? "
                                              "AND seq = ? ORDER BY part"));
  st.bind(1, partner.name).bind(2, seq);
  transport::CompressedParts compressed(stored_parts(st, partner, key, seq));
  SQLPOST_TRY_ASSIGN(Statement ins, db.prepare("INSERT INTO temp.sqlpost_resplit(part, parts, "
                                               "mail) VALUES (?, ?, ?)"));
  SQLPOST_TRY_ASSIGN(const std::uint32_t parts,
                     transport::encode_parts(
                         {local.name, partner.name, static_cast<std::uint64_t>(seq)}, local.address,
                         partner.address, message, compressed, key, max_message_bytes,
                         [&](std::uint32_t part, std::uint32_t count, std::string mail) {
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
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, site));
  SQLPOST_TRY_ASSIGN(const transport::Key key, pair_key(partner));
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  ReencodeSummary summary;
  SQLPOST_TRY_ASSIGN(const auto seqs, waiting_messages(db, site, from));
  for (const std::int64_t seq : seqs) {
    SQLPOST_TRY_ASSIGN(const std::int64_t before, part_count(db, site, seq));
    SQLPOST_TRY_ASSIGN(const std::int64_t after,
                       resplit(db, local, partner, key, seq, max_message_bytes, now));
    ++summary.messages;
    summary.parts_before += before;
    summary.parts_after += after;
  }
  return summary;
}

}  // namespace sqlpost
