// sqlpost/agent/site_file.h — is this file an sqlpost site, and if not, what is it?
//
// Contract: check_site_file() looks at DB before a command opens it, without
// changing it. A site passes. Anything else returns a one-line reason, which
// the command line reports with exit code 7 (kExitNotASite): a missing
// file, a folder, an empty file, an SQLite database without sqlpost tables
// ("run sqlpost init"), or a file that is no SQLite database at all, named by
// what it looks like (text, gzip, ELF program, SQLite journal/WAL, ...). With
// `for_init`, a missing or empty file and a plain SQLite database pass (init
// makes them a site). Unreadable files pass: the command's own open reports them.
#pragma once

#include <optional>
#include <string>

namespace sqlpost {

// Empty when DB may be used; otherwise the one-line reason it is not a site.
std::optional<std::string> check_site_file(const std::string& path, bool for_init);

// What a file that is no SQLite database looks like, from its first bytes.
std::string describe_content(const std::string& head);

}  // namespace sqlpost
