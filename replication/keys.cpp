#include "replication/keys.h"

#include <limits>
#include <set>

#include "schema/metadata.h"

namespace sqlpost {
namespace {

Result<std::optional<std::int64_t>> config_int(Database& db, std::string_view key) {
  SQLPOST_TRY_ASSIGN(const auto text, get_config(db, key));
  if (!text) {
    return std::optional<std::int64_t>();
  }
  try {
    std::size_t used = 0;
    const std::int64_t value = std::stoll(*text, &used);
    if (used == text->size()) {
      return std::optional<std::int64_t>(value);
    }
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reported below
  }
  return make_error(Errc::kConfig, std::string(key) + " is not a number: '" + *text + "'");
}

// This site's slot: keys.slot, or 0 at the consolidated site.
Result<std::optional<std::int64_t>> own_slot(Database& db) {
  SQLPOST_TRY_ASSIGN(auto slot, config_int(db, kKeySlotConfig));
  if (slot) {
    if (*slot < 0 || *slot >= kKeySlots) {
      return make_error(Errc::kConfig, "keys.slot must be 0.." + std::to_string(kKeySlots - 1));
    }
    return slot;
  }
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  if (local.role == Role::kConsolidated) {
    return std::optional<std::int64_t>(0);
  }
  return std::optional<std::int64_t>();
}

// Published tables declared INTEGER PRIMARY KEY AUTOINCREMENT (SQLite allows the
// keyword nowhere else).
Result<std::set<std::string>> autoincrement_tables(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto articles, load_articles(db));
  std::set<std::string> tables;
  for (const auto& a : articles) {
    SQLPOST_TRY_ASSIGN(Statement * st,
                       db.cached("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                 "name = ? AND sql LIKE '%AUTOINCREMENT%'"));
    st->bind(1, a.table);
    SQLPOST_TRY(st->step());
    const bool autoincrement = st->column_int(0) > 0;
    st->reset();
    if (autoincrement) {
      tables.insert(a.table);
    }
  }
  return tables;
}

Result<> seed_table(Database& db, const std::string& table, std::int64_t slot) {
  SQLPOST_TRY_ASSIGN(
      Statement st,
      db.prepare("SELECT (SELECT seq FROM sqlite_sequence WHERE name = ?1), max(ifnull((SELECT "
                 "seq FROM sqlite_sequence WHERE name = ?1), 0), ifnull((SELECT max(rowid) FROM " +
                 quote_identifier(table) + "), 0))"));
  st.bind(1, table);
  SQLPOST_TRY(st.step());
  const bool has_row = !st.column(0).is_null();
  const std::int64_t current = st.column_int(0);
  const std::int64_t highest = st.column_int(1);
  SQLPOST_TRY_ASSIGN(const std::int64_t seq, next_key_seq(highest, slot));
  if (has_row && seq == current) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(
      Statement write,
      db.prepare(has_row ? "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1"
                         : "INSERT INTO sqlite_sequence(name, seq) VALUES (?1, ?2)"));
  write.bind(1, table).bind(2, seq);
  return write.run();
}

}  // namespace

Result<std::int64_t> next_key_seq(std::int64_t highest, std::int64_t slot) {
  if (slot < 0 || slot >= kKeySlots) {
    return make_error(Errc::kConfig, "key slot " + std::to_string(slot) + " is not 0.." +
                                         std::to_string(kKeySlots - 1));
  }
  if (highest <= 0) {
    return slot * kKeyBlockRows;  // the first key of the slot's first block
  }
  const std::int64_t block = (highest - 1) / kKeyBlockRows;
  if (block % kKeySlots == slot && highest < (block + 1) * kKeyBlockRows) {
    return highest;  // room left in our own block: go on there
  }
  std::int64_t next = block / kKeySlots * kKeySlots + slot;
  if (next <= block) {
    next += kKeySlots;
  }
  if (next >= std::numeric_limits<std::int64_t>::max() / kKeyBlockRows) {
    return make_error(Errc::kConfig, "the key space of slot " + std::to_string(slot) +
                                         " is used up (keys above " + std::to_string(highest) +
                                         ")");
  }
  return next * kKeyBlockRows;
}

Result<bool> key_ranges_enabled(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto mode, get_config(db, "keys"));
  return mode && *mode == "ranges";
}

Result<> seed_key_ranges(Database& db) {
  SQLPOST_TRY_ASSIGN(const bool enabled, key_ranges_enabled(db));
  if (!enabled) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto slot, own_slot(db));
  if (!slot) {
    return success();  // a remote extracted before keys=ranges: no slot, no ranges
  }
  SQLPOST_TRY_ASSIGN(const auto tables, autoincrement_tables(db));
  for (const auto& table : tables) {
    SQLPOST_TRY(seed_table(db, table, *slot));
  }
  return success();
}

std::string child_slot_config(const std::string& site) {
  return std::string(kKeySlotConfig) + "." + site;
}

Result<std::int64_t> next_child_slot(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto own, own_slot(db));
  std::int64_t highest = own ? *own : 0;
  SQLPOST_TRY_ASSIGN(const auto config, load_config(db));
  const std::string prefix = std::string(kKeySlotConfig) + ".";
  for (const auto& [key, value] : config) {
    if (key.starts_with(prefix)) {
      SQLPOST_TRY_ASSIGN(const auto slot, config_int(db, key));
      highest = std::max(highest, slot.value_or(0));
    }
  }
  if (highest + 1 >= kKeySlots) {
    return make_error(Errc::kConfig, "no key slot left (" + std::to_string(kKeySlots) + " in all)");
  }
  return highest + 1;
}

}  // namespace sqlpost
