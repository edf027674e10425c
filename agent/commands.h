// sqlpost/agent/commands.h — the sqlpost command line.
//
// Contract: run_cli() parses argv with CLI11, runs one subcommand, prints
// results to stdout and one-line errors ("sqlpost: <message>") to stderr, and
// returns an exit code from exit_codes.h. It never throws.
#pragma once

namespace sqlpost {

int run_cli(int argc, char** argv);

}  // namespace sqlpost
