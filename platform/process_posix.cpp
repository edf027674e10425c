#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "platform/process.h"

namespace sqlpost::platform {
namespace {

// Written by the signal handler: must be lock-free to be async-signal-safe.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);

struct sigaction g_previous_term {};
struct sigaction g_previous_int {};

extern "C" void on_stop_signal(int /*signal*/) {
  g_stop_requested.store(true, std::memory_order_relaxed);
}

void install_handler(int signal, struct sigaction* previous) {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a pass's blocking calls resume: the pass runs to its end
  sigaction(signal, &action, previous);
}

}  // namespace

StopRequests::StopRequests() {
  g_stop_requested.store(false);
  install_handler(SIGTERM, &g_previous_term);
  install_handler(SIGINT, &g_previous_int);
}

StopRequests::~StopRequests() {
  sigaction(SIGTERM, &g_previous_term, nullptr);
  sigaction(SIGINT, &g_previous_int, nullptr);
}

bool StopRequests::requested() { return g_stop_requested.load(); }

void StopRequests::request() { g_stop_requested.store(true); }

long process_id() { return static_cast<long>(::getpid()); }

Result<> disable_core_dumps() {
  const rlimit none{0, 0};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return make_error(Errc::kInternal,
                      std::string("cannot disable core dumps: ") + std::strerror(errno));
  }
#if defined(__linux__)
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return make_error(Errc::kInternal,
                      std::string("cannot mark the process not dumpable: ") + std::strerror(errno));
  }
#endif
  return success();
}

std::tm utc_time(std::time_t t) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return tm;
}

int run_shell_command(const std::string& command,
                      const std::vector<std::pair<std::string, std::string>>& environment) {
  const pid_t child = ::fork();
  if (child < 0) {
    return -1;
  }
  if (child == 0) {
    for (const auto& [name, value] : environment) {
      ::setenv(name.c_str(), value.c_str(), 1);  // the child's own copy
    }
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace sqlpost::platform
