// sqlpost/agent/manpage.h — documentation generated from the command-line
// definition, so that it cannot drift from the program.
//
// Contract: man_page() renders the sqlpost(1) manual page (roff, man macros)
// from the CLI11 App tree: every visible subcommand in definition order with
// its arguments, options, value names and help text, and the exit status table
// of exit_codes.h. bash_completion() renders a bash completion script
// (subcommands, options, file names where an option takes a FILE) from the
// same tree. Both are pure functions of the tree and the version (no dates), so
// builds are reproducible. name_option_values() gives every option a named
// value (FILE, INTERVAL, SITE, ...) instead of CLI11's TEXT/INT, and drops the
// type from positional arguments (their name already says it).
#pragma once

#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace sqlpost {

std::string man_page(const CLI::App& app);
std::string bash_completion(const CLI::App& app);
void name_option_values(CLI::App& app);

}  // namespace sqlpost
