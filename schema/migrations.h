// sqlpost/schema/migrations.h — the agent's own tables (sqlpost_*) and their
// versioned migrations.
//
// Contract: open_site() opens an existing site database and brings its sqlpost
// tables up to kSchemaVersion inside one write transaction; it refuses a
// database without sqlpost tables (kNotFound, "run sqlpost init") and one made
// by a newer sqlpost (kUnsupported). create_site_tables() is used by init
// only. User tables are never touched here.
#pragma once

#include <string>

#include "schema/db.h"

namespace sqlpost {

inline constexpr int kSchemaVersion = 10;

// Opens DB read-write, checks and upgrades its sqlpost schema.
Result<Database> open_site(const std::string& path);

// True when the database already holds sqlpost tables.
Result<bool> has_site_tables(Database& db);

// Creates every sqlpost_* table at kSchemaVersion (caller holds a transaction).
Result<> create_site_tables(Database& db);

// Reads the recorded schema version (0 when absent).
Result<int> schema_version(Database& db);

}  // namespace sqlpost
