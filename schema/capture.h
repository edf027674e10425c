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

// kArticleAdded / kArticleRemoved: a live publication change for the children
// (docs/protocol.md, "Live publication changes"); they carry no row.
enum class ChangeOp : int {
  kInsert = 1,
  kUpdate = 2,
  kDelete = 3,
  kPassthrough = 4,
  kArticleAdded = 5,
  kArticleRemoved = 6
};

// True for the log rows that carry no table row (passthrough, article records).
constexpr bool is_control_op(ChangeOp op) {
  return op == ChangeOp::kPassthrough || op == ChangeOp::kArticleAdded ||
         op == ChangeOp::kArticleRemoved;
}

// The origin written while passthrough SQL runs: what its statements change is
// not replicated as data (the statements themselves travel).
inline constexpr std::string_view kPassthroughOrigin = "!passthrough";
// The origin of the starting rows logged when a table joins a publication with
// subscribers: "!article <publication>". Routing sends them only to the children
// subscribed to that publication (never to the parent).
inline constexpr std::string_view kArticleRowsOriginPrefix = "!article ";
// Such rows are copies of what the site already holds, not changes made here.
constexpr bool is_article_rows_origin(std::string_view origin) {
  return origin.substr(0, kArticleRowsOriginPrefix.size()) == kArticleRowsOriginPrefix;
}

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

// Logs an article record for the children (kArticleAdded: `definition` is the
// record's JSON text; kArticleRemoved: empty) with the current origin mark:
// n0 = publication, n1 = table, n2 = definition, o0 = target (NULL: every
// subscriber of the publication).
Result<> log_article_record(Database& db, ChangeOp op, std::string_view publication,
                            std::string_view table, std::string_view definition,
                            const Value& target);

// Logs every row of a published table as an insert (its capture layout) with
// `origin`: the starting rows a new subscriber of the table needs.
Result<std::int64_t> log_table_rows(Database& db, std::string_view table, std::string_view origin);

}  // namespace sqlpost
