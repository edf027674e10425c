#include "agent/exit_codes.h"

namespace sqlpost {

const std::vector<ExitCodeMeaning>& exit_code_meanings() {
  static const std::vector<ExitCodeMeaning> table = {
      {kExitOk, "all went well", ""},
      {kExitFailure, "another failure", "read the message"},
      {kExitUsage, "bad command line or argument", "fix the command"},
      {kExitConfig, "control parameters missing or invalid",
       "run the sqlpost config command the message shows"},
      {kExitTransport, "mail could not be sent or received",
       "nothing is lost; the next run retries (see the message for a permanent refusal)"},
      {kExitRejected, "received mail was rejected (forged, unknown sender, malformed)",
       "sqlpost status; rejected mail is kept in sqlpost_rejected"},
      {kExitBusy, "another sqlpost agent holds this database (its agent lock)",
       "harmless for overlapping cron runs"},
      {kExitNotASite, "the database is not an sqlpost site", "sqlpost init or sqlpost extract"},
      {kExitDatabase,
       "SQLite reported an error, or an sqlpost_* table holds a value sqlpost cannot read",
       "read the message; for damaged metadata restore a backup or repair the named row"},
      {kExitDatabaseBusy, "an application held the database's write lock longer than lock_wait",
       "nothing is lost; the next run goes on; if it repeats, the application holds its "
       "transactions open too long (docs/capture.md)"},
      {kExitAlert, "run only: the pass went well, but an alert is in force",
       "sqlpost status DB lists the alerts"},
  };
  return table;
}

int exit_code_for(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument:
    case Errc::kAlreadyExists: return kExitUsage;
    case Errc::kConfig: return kExitConfig;
    case Errc::kTransient:
    case Errc::kPermanent:
    case Errc::kTimeout: return kExitTransport;
    case Errc::kCorruption:
    case Errc::kAuthentication: return kExitRejected;
    case Errc::kAgentRunning: return kExitBusy;
    case Errc::kBusy: return kExitDatabaseBusy;
    case Errc::kDatabase: return kExitDatabase;
    case Errc::kNotFound:
    case Errc::kUnsupported:
    case Errc::kLimitExceeded:
    case Errc::kIOError:
    case Errc::kInternal: return kExitFailure;
  }
  return kExitFailure;
}

int exit_code_for(const Error& error) { return exit_code_for(error.code); }

}  // namespace sqlpost
