// sqlpost/replication/keys.h — keys that cannot collide for rows inserted without one.
//
// Contract: with `keys=ranges` configured at a site, every published table whose key
// is INTEGER PRIMARY KEY AUTOINCREMENT takes its new keys from this site's blocks.
// The key space 1.. is cut into blocks of kKeyBlockRows keys; block j belongs to slot
// j mod kKeySlots, and a site (slot `keys.slot`, 0 at the consolidated site when
// unset) hands out keys from its own blocks only. SQLite gives a new row
// max(sqlite_sequence.seq, max(rowid)) + 1, read when the INSERT starts, so
// seed_key_ranges() sets seq to keep that the next key of the site's current block,
// or to the first key of its next block above every row present once the current
// block is used up or rows of other sites lie above it (the site leapfrogs them).
// It runs inside the apply transaction after other sites' rows arrive, at every
// run and at extraction, so applications insert with plain SQLite and nothing else.
// next_key_seq() is the arithmetic; next_child_slot() picks a slot for `site add`.
#pragma once

#include <cstdint>
#include <string>

#include "schema/db.h"

namespace sqlpost {

inline constexpr std::int64_t kKeyBlockRows = std::int64_t{1} << 24;  // 16,777,216
inline constexpr std::int64_t kKeySlots = 4096;

// The sqlite_sequence value that makes slot's next key the next one of its own
// block after `highest` (the larger of the table's seq and max(rowid)).
Result<std::int64_t> next_key_seq(std::int64_t highest, std::int64_t slot);

// True when `keys=ranges` is configured here.
Result<bool> key_ranges_enabled(Database& db);

// Seeds sqlite_sequence of every published AUTOINCREMENT table (see above); does
// nothing unless key ranges are enabled. The caller holds a write transaction.
Result<> seed_key_ranges(Database& db);

// The slot of a new child: one above every slot this site knows (its own and its
// children's, `keys.slot.NAME`).
Result<std::int64_t> next_child_slot(Database& db);

// Config keys: this site's slot, and the slot given to child `site` (written into
// its extracted file as its `keys.slot`).
inline constexpr std::string_view kKeySlotConfig = "keys.slot";
std::string child_slot_config(const std::string& site);

}  // namespace sqlpost
