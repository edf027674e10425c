// sqlpost/schema/capture.h — generation of the capture triggers.
//
// Contract: regenerate_capture() makes the triggers match the publications:
// every published table gets AFTER INSERT / UPDATE OF <published columns> /
// DELETE triggers writing one sqlpost_log row per changed row, and tables no
// longer published lose theirs. Each log row records the current epoch (read
// from sqlpost_epoch inside the writing transaction), the origin (from
// sqlpost_context, NULL for local writes), the operation and the row images in
// the log's value columns n<i> (new) / o<i> (old), whose meaning is given by a
// capture layout (sqlpost_layouts): the table's captured columns, key columns
// first. Values are copied by SQLite itself, so they keep their exact storage
// class and bits. Call inside the caller's write transaction.
#pragma once

#include <string>
#include <vector>

#include "schema/db.h"

namespace sqlpost {

enum class ChangeOp : int { kInsert = 1, kUpdate = 2, kDelete = 3, kPassthrough = 4 };

// The origin written while passthrough SQL runs: what its statements change is
// not replicated as data (the statements themselves travel).
inline constexpr std::string_view kPassthroughOrigin = "!passthrough";

struct CaptureLayout {
  std::int64_t id = 0;
  std::string table;
  std::vector<std::string> columns;  // key columns first, in key order
  std::size_t key_count = 0;
};

Result<> regenerate_capture(Database& db);

// The captured columns of a table (key columns first) from its articles.
Result<CaptureLayout> capture_layout_for(Database& db, std::string_view table);

Result<std::vector<CaptureLayout>> load_layouts(Database& db);

// Logs passthrough SQL for the children (`target`: one site's name, or NULL for
// all) with the current origin mark, inside the caller's transaction.
Result<> log_passthrough(Database& db, std::string_view sql, const Value& target);

}  // namespace sqlpost
