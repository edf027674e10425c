// sqlpost/agent/exit_codes.h — what the sqlpost program's exit status means.
//
// Contract: these numbers are part of the user interface (cron wrappers and
// monitoring test them); docs/operations.md lists them. Never renumber.
#pragma once

#include <string_view>
#include <vector>

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
  kExitAlert = 10,        // run: the pass went well, but an alert is in force (see status)
};

// What each code means and what to do about it, one row per code above, in
// order: the man page prints this table (docs/operations.md lists the same).
struct ExitCodeMeaning {
  int code;
  std::string_view meaning;
  std::string_view action;
};
const std::vector<ExitCodeMeaning>& exit_code_meanings();

// The exit code that best describes an error (the one mapping from Errc; every
// code it gives is a row of exit_code_meanings(), which tests/ops_cli_test.cpp also
// compares with docs/operations.md).
int exit_code_for(Errc code);
int exit_code_for(const Error& error);

}  // namespace sqlpost
