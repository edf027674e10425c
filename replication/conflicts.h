// sqlpost/replication/conflicts.h — conflict policies and the conflicts table.
//
// Contract: a policy is chosen per article (`publish --conflict`): `incoming` (the
// change that arrives last wins), `consolidated` (the deciding site's value stays) or
// `newest:COLUMN` (the higher value of COLUMN wins; a tie goes to the site whose name
// sorts first). Only a site receiving from its child decides; a site receiving from
// its parent follows it. record_conflict() writes one row of sqlpost_conflicts (one
// per conflicting column, or one per failed change) inside the caller's transaction
// with the policy's choice in resolved_value, then reads resolved_value back: an
// AFTER INSERT trigger on sqlpost_conflicts may change it (the counterpart of SQL
// Remote's RESOLVE UPDATE) and the result is what is applied. load_conflicts() reads
// the table for `sqlpost conflicts` and `status`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/db.h"
#include "schema/value.h"

namespace sqlpost {

enum class PolicyKind { kIncoming, kConsolidated, kNewest };

struct ConflictPolicy {
  PolicyKind kind = PolicyKind::kIncoming;
  std::string column;  // kNewest: the timestamp/version column
  std::string text = "incoming";
};

Result<ConflictPolicy> parse_conflict_policy(std::string_view text);

// Conflict kinds, as stored in sqlpost_conflicts.kind.
inline constexpr std::string_view kConflictUpdate = "update";  // values differ
inline constexpr std::string_view kConflictInsertExists = "insert_exists";
// The row-level record of an insert–insert collision, with both rows whole.
inline constexpr std::string_view kConflictInsertCollision = "insert_collision";
inline constexpr std::string_view kConflictUpdateMissing = "update_missing";
inline constexpr std::string_view kConflictDeleteMissing = "delete_missing";
// A delete whose old values are not the receiver's row: changed or re-inserted since.
inline constexpr std::string_view kConflictDeleteChanged = "delete_changed";
inline constexpr std::string_view kConflictConstraint = "constraint";  // NOT NULL/CHECK/UNIQUE
inline constexpr std::string_view kConflictForeignKey = "foreign_key";
// A child changed a row it does not hold (outside its row subset here): not applied.
inline constexpr std::string_view kConflictOutsideSubset = "outside_subset";

struct ConflictRecord {
  std::int64_t id = 0;
  std::int64_t at = 0;
  std::string table;
  std::string row_key;  // the key values, rendered
  std::string kind;
  std::optional<std::string> column;
  Value local;
  Value old;
  Value incoming;
  Value resolved;
  std::string from_site;
  std::string local_site;
  std::string policy;
  std::string outcome;  // incoming, local, trigger, skipped, kept, none
  std::string detail;
};

// Inserts `record`; returns resolved_value as it is after the user's triggers ran.
Result<Value> record_conflict(Database& db, const ConflictRecord& record);

Result<std::vector<ConflictRecord>> load_conflicts(Database& db, std::int64_t limit);
Result<std::int64_t> count_conflicts(Database& db);

// Renders key values exactly (distinct keys give distinct text; 1 and 1.0 differ,
// BLOBs in full): (1, 2.5, 'a', x'00'). Used as sqlpost_conflicts.row_key and to
// index rows in memory.
std::string render_key(const Row& key);
// A whole row as SQL an operator can reuse: ("id", "v") VALUES (1, 'x'); values exact.
std::string render_row(const std::vector<std::string>& columns, const Row& values);
// "table\x1fkey\x1fcolumn": one column of one row ("*", "-": row-level marks).
std::string row_column_key(std::string_view table, const Row& key, std::string_view column);

}  // namespace sqlpost
