// sqlpost/agent/log.h — the one logging module of the agent (built on spdlog).
//
// Contract: every line, on stderr and in the file alike, reads
// "2026-11-25T10:00:00.123Z hq sqlpost[4242] [warn] text": UTC time, the site
// (set_log_site(); "-" until known), the process id, the level and the text.
// Before init_logging() every message goes to stderr only. init_logging()
// adds, when LogOptions::file is set, a size-rotated log file ("<file>",
// "<file stem>.1<ext>", ...); stderr keeps every level, info included, so cron
// mails show it. Debug messages are written only when
// `verbose`. An unopenable log file gives Errc::kConfig naming the path, and
// the previous logging stays in force. Every function here is thread-safe and
// never throws. The module cannot recognise secrets: callers must never pass
// passwords, keys or other secret parameter values into a message.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sqlpost {

struct LogOptions {
  std::string file;  // empty: stderr only
  std::size_t max_bytes =
      std::size_t{10} * 1024 * 1024;  // rotate the file once it would grow past this
  std::size_t max_files = 5;          // rotated files kept besides the current one
  bool verbose = false;               // also write debug messages
};

Result<> init_logging(const LogOptions& options);
// Back to the state before init_logging(): stderr only, not verbose; closes the file.
void reset_logging();
// The site named in every line from now on ("-" when empty).
void set_log_site(std::string_view site);

void log_info(std::string_view text);
void log_warn(std::string_view text);
void log_error(std::string_view text);
void log_debug(std::string_view text);  // written only when verbose

}  // namespace sqlpost
