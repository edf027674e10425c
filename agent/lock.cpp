#include "agent/lock.h"

namespace sqlpost {

Result<AgentLock> AgentLock::acquire(const std::string& database_path) {
  const std::string path = database_path + ".sqlpost-lock";
  auto lock = platform::FileLock::try_acquire(path);
  if (!lock.ok() && lock.error().code == Errc::kBusy) {
    return make_error(Errc::kAgentRunning, "another sqlpost agent is running on " + database_path +
                                               " (lock " + path + "); this one exits");
  }
  if (!lock.ok()) {
    return lock.take_error();
  }
  return AgentLock(std::move(lock).value());
}

}  // namespace sqlpost
