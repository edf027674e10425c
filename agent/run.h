// sqlpost/agent/run.h — `sqlpost run`: one pass of the message agent.
//
// Contract: run_agent_once() takes the per-database agent lock, builds the link
// from the control parameters (kConfig listing what is missing and the command
// that sets it), and runs receive → apply → prepare → send (or only the
// receive/apply or prepare/send half). The report lists every problem an
// administrator can act on; exit_code_for_report() maps it to the documented
// exit codes.
#pragma once

#include <memory>
#include <string>

#include "replication/engine.h"
#include "schema/db.h"
#include "schema/metadata.h"
#include "transport/link.h"

namespace sqlpost {

struct RunOptions {
  bool send_only = false;
  bool receive_only = false;
  bool lock_held = false;  // the caller holds the agent lock (a long-running agent)
  bool send_now = false;   // ignore the partners' send schedules in this pass
};

Result<std::unique_ptr<transport::Link>> make_link(Database& db, const std::string& db_path,
                                                   const LocalSite& site);
Result<EngineOptions> engine_options(Database& db);
Result<RunReport> run_agent_once(const std::string& db_path, const RunOptions& options);
int exit_code_for_report(const RunReport& report);

}  // namespace sqlpost
