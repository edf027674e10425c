// sqlpost/agent/lock.h — one agent per database at a time.
//
// Contract: AgentLock::acquire() takes an exclusive, non-blocking flock on
// "<DB>.sqlpost-lock" (created mode 0600 if missing). A second agent on the
// same database gets Errc::kBusy at once, naming the lock file. The lock is
// released when the AgentLock is destroyed or the process dies (flock), so a
// killed agent never leaves a stale lock behind.
#pragma once

#include <string>

#include "common/result.h"

namespace sqlpost {

class AgentLock {
 public:
  static Result<AgentLock> acquire(const std::string& database_path);
  AgentLock(AgentLock&& other) noexcept;
  AgentLock& operator=(AgentLock&&) = delete;
  AgentLock(const AgentLock&) = delete;
  AgentLock& operator=(const AgentLock&) = delete;
  ~AgentLock();

 private:
  explicit AgentLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace sqlpost
