#include "replication/spool.h"

#include <algorithm>
#include <optional>

namespace sqlpost {
namespace {

// The head, then each spooled chunk in order, then the end record.
class SpoolSource final : public ByteSource {
 public:
  SpoolSource(std::vector<std::uint8_t> head, std::optional<Statement> chunks,
              std::vector<std::uint8_t> end)
      : head_(std::move(head)), chunks_(std::move(chunks)), end_(std::move(end)) {}

  Result<std::size_t> read(std::span<std::uint8_t> out) override {
    while (pos_ == current().size()) {
      SQLPOST_TRY_ASSIGN(const bool more, advance());
      if (!more) {
        return std::size_t{0};
      }
    }
    const std::vector<std::uint8_t>& bytes = current();
    const std::size_t n = std::min(out.size(), bytes.size() - pos_);
    std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(pos_), n, out.begin());
    pos_ += n;
    return n;
  }

 private:
  enum class Phase { kHead, kChunks, kEnd, kDone };

  const std::vector<std::uint8_t>& current() const {
    switch (phase_) {
      case Phase::kHead: return head_;
      case Phase::kChunks: return chunk_;
      case Phase::kEnd: return end_;
      case Phase::kDone: break;
    }
    return none_;
  }

  Result<bool> advance() {
    pos_ = 0;
    if (phase_ == Phase::kHead || phase_ == Phase::kChunks) {
      phase_ = Phase::kChunks;
      bool row = false;
      if (chunks_) {
        SQLPOST_TRY_ASSIGN(row, chunks_->step());
      }
      if (row) {
        const Value data = chunks_->column(0);
        const auto* blob = std::get_if<Blob>(&data.storage());
        chunk_ = blob != nullptr ? blob->bytes : std::vector<std::uint8_t>{};
        return true;
      }
      phase_ = Phase::kEnd;
      return true;
    }
    phase_ = Phase::kDone;
    return false;
  }

  std::vector<std::uint8_t> head_;
  std::optional<Statement> chunks_;  // none when nothing was spooled
  std::vector<std::uint8_t> end_;
  std::vector<std::uint8_t> chunk_;
  std::vector<std::uint8_t> none_;
  Phase phase_ = Phase::kHead;
  std::size_t pos_ = 0;
};

}  // namespace

SpooledBody::SpooledBody(Database& db, std::string site)
    : db_(db),
      site_(std::move(site)),
      writer_([this](std::span<const std::uint8_t> bytes) { return write_chunk(bytes); },
              kSpoolChunkBytes) {}

Result<std::unique_ptr<SpooledBody>> SpooledBody::create(Database& db, const std::string& site) {
  SQLPOST_TRY(
      db.exec("CREATE TEMP TABLE IF NOT EXISTS sqlpost_spool(site TEXT NOT NULL, "
              "n INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (site, n))"));
  std::unique_ptr<SpooledBody> body(
      new SpooledBody(db, site));  // NOLINT(cppcoreguidelines-owning-memory): private constructor
  SQLPOST_TRY(body->discard());
  return body;
}

Result<> SpooledBody::write_chunk(std::span<const std::uint8_t> bytes) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db_.cached("INSERT INTO temp.sqlpost_spool(site, n, data) VALUES (?, ?, ?)"));
  st->bind(1, site_).bind(2, ++chunks_);
  st->bind(3, Value(Blob{std::vector<std::uint8_t>(bytes.begin(), bytes.end())}));
  return st->run();
}

void SpooledBody::table(const TableBlock& t) {
  tables_.push_back(t);
  writer_.table(t);
}

void SpooledBody::change(std::int64_t epoch, WireChange&& c) { writer_.change(epoch, c); }

void SpooledBody::append(const Payload& extra) {
  std::vector<std::uint32_t> index;
  for (const auto& t : extra.tables) {
    const auto found = std::find(tables_.begin(), tables_.end(), t);
    if (found != tables_.end()) {
      index.push_back(static_cast<std::uint32_t>(found - tables_.begin()));
    } else {
      index.push_back(static_cast<std::uint32_t>(tables_.size()));
      table(t);
    }
  }
  for (const auto& e : extra.epochs) {
    for (WireChange c : e.changes) {
      if (!is_control_op(c.op) && c.op != ChangeOp::kPassthrough) {
        c.table = index.at(c.table);
      }
      writer_.change(e.epoch, c);
    }
  }
}

Result<> SpooledBody::finish() { return writer_.finish(); }

Result<std::unique_ptr<ByteSource>> SpooledBody::payload(const Payload& head) {
  std::optional<Statement> chunks;
  if (chunks_ > 0) {
    SQLPOST_TRY_ASSIGN(Statement st, db_.prepare("SELECT data FROM temp.sqlpost_spool WHERE "
                                                 "site = ? ORDER BY n"));
    st.bind(1, site_);
    chunks.emplace(std::move(st));
  }
  return std::unique_ptr<ByteSource>(
      std::make_unique<SpoolSource>(encode_head(head), std::move(chunks), encode_end(changes())));
}

Result<> SpooledBody::remove_rows() {
  SQLPOST_TRY_ASSIGN(Statement * st, db_.cached("DELETE FROM temp.sqlpost_spool WHERE site = ?"));
  st->bind(1, site_);
  return st->run();
}

Result<> SpooledBody::discard() { return chunks_ > 0 ? remove_rows() : success(); }

}  // namespace sqlpost
