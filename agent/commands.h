// sqlpost/agent/commands.h — the sqlpost command line.
//
// Contract: run_cli() parses argv with CLI11, runs one subcommand, prints
// results to stdout and one-line errors ("sqlpost: <message>") to stderr, and
// returns an exit code from exit_codes.h. It never throws. run_guarded() runs
// a body that might (main, each pass of a long-running agent): an exception
// becomes the message "sqlpost: internal error: ..." and exit code 1.
#pragma once

#include <functional>

namespace sqlpost {

int run_cli(int argc, char** argv);
int run_guarded(const std::function<int()>& body) noexcept;

}  // namespace sqlpost
