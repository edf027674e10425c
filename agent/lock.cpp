#include "agent/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sqlpost {

Result<AgentLock> AgentLock::acquire(const std::string& database_path) {
  const std::string path = database_path + ".sqlpost-lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(Errc::kIOError,
                      "cannot open lock file " + path + ": " + std::strerror(errno));
  }
  AgentLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return make_error(Errc::kAgentRunning, "another sqlpost agent is running on " + database_path +
                                               " (lock " + path + "); this one exits");
  }
  return lock;
}

AgentLock::AgentLock(AgentLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

AgentLock::~AgentLock() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

}  // namespace sqlpost
