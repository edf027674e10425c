// sqlpost/agent/atomic_file.h — files the agent writes for others to read (the
// metrics textfile, the HTML report), replaced whole.
//
// Contract: replace_file() writes `text` to a temporary file beside `path`
// (PATH.tmp.PID), flushes it to disk, makes it readable by all (it must hold no
// secret) and renames it over `path`: a reader sees the old file or the new
// one, never a part. On failure the temporary file is removed, `path` is left
// as it was and the error names the operation and the file (as platform/files.h
// says: "cannot open P: <reason>"). A leftover temporary
// file of a killed run with the same pid is replaced.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace sqlpost {

Result<> replace_file(const std::string& path, std::string_view text);

}  // namespace sqlpost
