// sqlpost/replication/spool.h — a partner's next message spooled on disk while it
// is routed, so that a message of any size is never held in memory.
//
// Contract: SpooledBody is the BodyTarget of one partner during a prepare pass: it
// encodes the routed tables and changes as payload records (payload_stream.h) and
// writes them, in chunks of kSpoolChunkBytes, to the connection's temporary table
// temp.sqlpost_spool (created when the first chunk is written, so an idle pass
// writes nothing; SQLite keeps it in a temporary file).
// append() adds further changes (the decided rows a conflict sends back) after the
// routed ones, matching tables by name and columns. payload() streams the whole
// version-4 payload — the given head, the spooled records, the end record — and
// can be called again for the same bytes. discard() removes the partner's rows.
// Memory: one chunk per partner. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/byte_stream.h"
#include "replication/payload_stream.h"
#include "replication/routing.h"
#include "schema/db.h"

namespace sqlpost {

inline constexpr std::size_t kSpoolChunkBytes = std::size_t{64} << 10;

class SpooledBody final : public BodyTarget {
 public:
  static Result<std::unique_ptr<SpooledBody>> create(Database& db, const std::string& site);

  void table(const TableBlock& t) override;
  void change(std::int64_t epoch, WireChange&& c) override;
  void append(const Payload& extra);
  // Writes what is buffered; the first failure of any spool write, if any.
  Result<> finish();
  [[nodiscard]] std::uint64_t changes() const { return writer_.changes(); }
  Result<std::unique_ptr<ByteSource>> payload(const Payload& head);
  Result<> discard();

 private:
  SpooledBody(Database& db, std::string site);
  Result<> write_chunk(std::span<const std::uint8_t> bytes);
  Result<> remove_rows();

  Database& db_;
  std::string site_;
  std::int64_t chunks_ = 0;
  std::vector<TableBlock> tables_;
  BodyWriter writer_;
};

}  // namespace sqlpost
