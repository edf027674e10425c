#include "replication/outbox.h"

#include <chrono>

#include "replication/rekey.h"
#include "replication/run_context.h"
#include "schema/metadata.h"
#include "transport/codec.h"

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

// The payload bytes of one stored message, from its own parts; `key` becomes the
// key they were sealed under (during a key rotation, the old or the new one).
Result<std::vector<std::uint8_t>> stored_payload(Database& db, const Partner& partner,
                                                 const PairKeys& keys, std::int64_t seq,
                                                 std::int64_t& parts, transport::Key& key) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT mail FROM sqlpost_outbox WHERE site = ? "
                                              "AND seq = ? ORDER BY part"));
  st.bind(1, partner.name).bind(2, seq);
  std::vector<transport::OpenedPart> opened;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    auto part = open_with_pair_keys(blob_text(st.column(0)), keys, partner.name);
    if (!part.ok()) {
      return make_error(part.error().code, "message " + std::to_string(seq) + " to " +
                                               partner.name +
                                               " does not open: " + part.error().message);
    }
    if (opened.empty()) {
      SQLPOST_TRY_ASSIGN(key, sealed_under(blob_text(st.column(0)), keys, partner.name));
    }
    opened.push_back(std::move(part).value());
  }
  parts = static_cast<std::int64_t>(opened.size());
  return transport::reassemble(std::move(opened));
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
    std::int64_t before = 0;
    transport::Key key;
    SQLPOST_TRY_ASSIGN(const auto payload, stored_payload(db, partner, keys, seq, before, key));
    if (reseal_under) {
      key = *reseal_under;
    }
    SQLPOST_TRY_ASSIGN(
        const auto mails,
        transport::encode_message({local.name, partner.name, static_cast<std::uint64_t>(seq)},
                                  local.address, partner.address, payload, key, max_message_bytes));
    SQLPOST_TRY_ASSIGN(Statement del,
                       db.prepare("DELETE FROM sqlpost_outbox WHERE site = ? AND seq = ?"));
    del.bind(1, site).bind(2, seq);
    SQLPOST_TRY(del.run());
    SQLPOST_TRY_ASSIGN(Statement ins,
                       db.prepare("INSERT INTO sqlpost_outbox(site, seq, part, parts, mail, "
                                  "created_at) VALUES (?, ?, ?, ?, ?, ?)"));
    for (std::size_t i = 0; i < mails.size(); ++i) {
      ins.bind(1, site).bind(2, seq).bind(3, static_cast<std::int64_t>(i + 1));
      ins.bind(4, static_cast<std::int64_t>(mails.size()));
      ins.bind(5, Value(Blob{std::vector<std::uint8_t>(mails[i].begin(), mails[i].end())}));
      ins.bind(6, now);
      SQLPOST_TRY(ins.run());
    }
    ++summary.messages;
    summary.parts_before += before;
    summary.parts_after += static_cast<std::int64_t>(mails.size());
  }
  return summary;
}

}  // namespace sqlpost
