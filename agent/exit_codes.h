// sqlpost/agent/exit_codes.h — what the sqlpost program's exit status means.
//
// Contract: these numbers are part of the user interface (cron wrappers and
// monitoring test them); docs/operations.md lists them. Never renumber.
#pragma once

#include "common/result.h"

namespace sqlpost {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,       // anything not covered below
  kExitUsage = 2,         // bad command line or invalid argument
  kExitConfig = 3,        // control parameters missing or invalid
  kExitTransport = 4,     // mail could not be sent or received (retry later)
  kExitRejected = 5,      // some received input was rejected (see status)
  kExitBusy = 6,          // another agent holds this database
  kExitNotASite = 7,      // the database is not (or not yet) an sqlpost site
  kExitDatabase = 8,      // SQLite reported an error
  kExitDatabaseBusy = 9,  // an application held the database's write lock longer than lock_wait
};

// The exit code that best describes an error.
int exit_code_for(const Error& error);

}  // namespace sqlpost
