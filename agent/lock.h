// sqlpost/agent/lock.h — one agent per database at a time.
//
// Contract: AgentLock::acquire() takes an exclusive, non-blocking lock on
// "<DB>.sqlpost-lock" (created owner only if missing; platform::FileLock: flock
// or LockFileEx). A second agent on the same database gets Errc::kAgentRunning at once,
// naming the lock file. The lock is released when the AgentLock is destroyed or
// the process dies, so a killed agent never leaves a stale lock behind.
#pragma once

#include <string>
#include <utility>

#include "common/result.h"
#include "platform/files.h"

namespace sqlpost {

class AgentLock {
 public:
  static Result<AgentLock> acquire(const std::string& database_path);

 private:
  explicit AgentLock(platform::FileLock lock) : lock_(std::move(lock)) {}
  platform::FileLock lock_;
};

}  // namespace sqlpost
