// sqlpost/platform/process.h — the process: stop requests, identity, crash dumps, time.
//
// Contract: a StopRequests object turns the polite stop requests of the OS into a
// flag: SIGTERM and SIGINT on POSIX (SA_RESTART, so blocking calls resume);
// Ctrl+C, Ctrl+Break, closing the console, logoff and shutdown on Windows
// (SetConsoleCtrlHandler). The handlers only set a lock-free atomic flag. The
// constructor clears the flag and installs the handlers, the destructor restores
// what was there before; at most one StopRequests may exist at a time.
// disable_core_dumps() keeps memory images (and the secrets in them) out of core
// files: RLIMIT_CORE 0 and, on Linux, PR_SET_DUMPABLE 0; on Windows, no crash
// dialog and no heap in Windows Error Reporting dumps. utc_time() is a thread-safe
// gmtime; local_time() a thread-safe localtime (the TZ environment variable, else
// the system's time zone); local_timestamp() is mktime: the moment a local
// calendar time names (fields out of range are normalised; tm_isdst -1 lets the
// zone decide; a time skipped by a daylight-saving change lands after it). run_shell_command() runs
// a command line through the system's shell
// (/bin/sh -c; cmd.exe on Windows) with extra environment variables, waits for it and
// returns its exit status (-1 when it could not be started). capture_shell_command()
// runs one through the shell with stdin closed (/dev/null; NUL on Windows) and
// captures what it prints: stdout up to `max_stdout` bytes (the rest is read and
// discarded, `truncated` set) and the last kMaxErrTail bytes of stderr. POSIX: the
// command runs in its own process group, killed (SIGKILL) with everything in it when
// `timeout` passes. Windows: stderr is not captured (it goes to the console) and
// there is no timeout (_popen). kInternal when the command cannot be started.
#pragma once

#include <chrono>
#include <cstddef>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace sqlpost::platform {

class StopRequests {
 public:
  StopRequests();
  StopRequests(const StopRequests&) = delete;
  StopRequests& operator=(const StopRequests&) = delete;
  StopRequests(StopRequests&&) = delete;
  StopRequests& operator=(StopRequests&&) = delete;
  ~StopRequests();

  [[nodiscard]] static bool requested();
  // Sets the flag as a stop request from the OS would.
  static void request();
};

long process_id();

Result<> disable_core_dumps();

std::tm utc_time(std::time_t t);
std::tm local_time(std::time_t t);
std::time_t local_timestamp(std::tm local);

int run_shell_command(const std::string& command,
                      const std::vector<std::pair<std::string, std::string>>& environment);

struct CommandOutput {
  static constexpr std::size_t kMaxErrTail = 1024;
  int exit_status = -1;    // the exit status; -1: ended by a signal, or timed out
  bool timed_out = false;  // killed when the timeout passed
  bool truncated = false;  // stdout had more than max_stdout bytes
  std::string out;         // stdout, at most max_stdout bytes
  std::string err_tail;    // the last kMaxErrTail bytes of stderr
};

Result<CommandOutput> capture_shell_command(const std::string& command, std::size_t max_stdout,
                                            std::chrono::milliseconds timeout);

}  // namespace sqlpost::platform
