#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>
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

std::tm local_time(std::time_t t) {
  std::tm tm{};
  ::localtime_r(&t, &tm);
  return tm;
}

std::time_t local_timestamp(std::tm local) { return std::mktime(&local); }

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

namespace {

// Owns one file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool open() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

Result<Pipe> make_pipe() {
  std::array<int, 2> fds{-1, -1};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    return make_error(Errc::kInternal, std::string("cannot make a pipe: ") + std::strerror(errno));
  }
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

// In the child: stdin from /dev/null, stdout and stderr to the pipes, then the shell.
[[noreturn]] void exec_child(const std::string& command, const Pipe& out, const Pipe& err) {
  ::setpgid(0, 0);
  const int null = ::open("/dev/null", O_RDONLY);
  if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(out.write.get(), 1) < 0 ||
      ::dup2(err.write.get(), 2) < 0) {
    ::_exit(127);
  }
  ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
  ::_exit(127);
}

// Reads what is ready on `fd` into `into`, keeping at most `keep` bytes (the first
// ones, or the last ones with keep_tail). False at end of file.
bool drain(Fd& fd, std::string& into, std::size_t keep, bool keep_tail, bool& truncated) {
  std::array<char, 4096> buffer{};
  const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
    return true;
  }
  if (n <= 0) {
    fd.reset();
    return false;
  }
  into.append(buffer.data(), static_cast<std::size_t>(n));
  if (into.size() > keep) {
    truncated = true;
    if (keep_tail) {
      into.erase(0, into.size() - keep);
    } else {
      into.resize(keep);
    }
  }
  return true;
}

// Reads both pipes until both are closed or the deadline passes (then false).
bool read_until_closed(Fd& out, Fd& err, CommandOutput& result, std::size_t max_stdout,
                       std::chrono::steady_clock::time_point deadline) {
  bool err_truncated = false;
  while (out.open() || err.open()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return false;
    }
    std::array<pollfd, 2> fds{pollfd{out.get(), POLLIN, 0}, pollfd{err.get(), POLLIN, 0}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      return false;
    }
    if (ready <= 0) {
      continue;
    }
    if (out.open() && fds[0].revents != 0) {
      drain(out, result.out, max_stdout, false, result.truncated);
    }
    if (err.open() && fds[1].revents != 0) {
      drain(err, result.err_tail, CommandOutput::kMaxErrTail, true, err_truncated);
    }
  }
  return true;
}

int wait_for(pid_t child) {
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      return -1;
    }
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

Result<CommandOutput> capture_shell_command(const std::string& command, std::size_t max_stdout,
                                            std::chrono::milliseconds timeout) {
  SQLPOST_TRY_ASSIGN(Pipe out, make_pipe());
  SQLPOST_TRY_ASSIGN(Pipe err, make_pipe());
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const pid_t child = ::fork();
  if (child < 0) {
    return make_error(Errc::kInternal,
                      std::string("cannot start a command: ") + std::strerror(errno));
  }
  if (child == 0) {
    exec_child(command, out, err);
  }
  ::setpgid(child, child);  // also here: no race with the child's own setpgid
  out.write.reset();
  err.write.reset();
  CommandOutput result;
  if (!read_until_closed(out.read, err.read, result, max_stdout, deadline)) {
    ::kill(-child, SIGKILL);  // the command's own process group: only what it started
    result.timed_out = true;
  }
  const int status = wait_for(child);
  result.exit_status = result.timed_out ? -1 : status;
  return result;
}

}  // namespace sqlpost::platform
