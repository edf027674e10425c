// sqlpost/agent/ops_commands.h — the commands an administrator watches a site
// with: log (runs and message log), stats (per partner per day) and queue
// (outbox, inbox, set-aside mail), each as text or --json (docs/json.md), and
// report (one HTML page of the whole hierarchy, agent/report.h).
#pragma once

#include <functional>

#include "common/result.h"

namespace CLI {
class App;
}  // namespace CLI

namespace sqlpost {

void add_ops_commands(CLI::App& app, std::function<Result<>()>& action);

}  // namespace sqlpost
