// sqlpost/agent/private_files.h — a site's secrets at rest and in memory.
//
// Contract: the database holds every pair key and any stored password, so
// make_private() gives the database file and its SQLite companions (-wal, -shm,
// -journal) that exist mode 0600 and returns the files whose mode it tightened
// (callers say so). shared_with_others() tells status whether group or others may
// read the database. disable_core_dumps() keeps the agent's memory (passwords,
// keys) out of core files. The OS calls are platform/'s (files.h, process.h).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace sqlpost {

Result<std::vector<std::string>> make_private(const std::string& db_path);
Result<bool> shared_with_others(const std::string& db_path);
void disable_core_dumps();

}  // namespace sqlpost
