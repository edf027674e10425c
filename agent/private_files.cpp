#include "agent/private_files.h"

#include "platform/files.h"
#include "platform/process.h"

namespace sqlpost {

Result<std::vector<std::string>> make_private(const std::string& db_path) {
  std::vector<std::string> tightened;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string path = db_path + suffix;
    // A companion that does not exist (yet) is skipped: SQLite copies the mode.
    if (platform::file_privacy(path) != platform::Privacy::kReadableByOthers) {
      continue;
    }
    SQLPOST_TRY(platform::restrict_to_owner(path));
    tightened.push_back(path);
  }
  return tightened;
}

Result<bool> shared_with_others(const std::string& db_path) {
  const platform::Privacy privacy = platform::file_privacy(db_path);
  if (privacy == platform::Privacy::kNotRegularFile) {
    return make_error(Errc::kIOError, "cannot read the permissions of " + db_path);
  }
  return privacy == platform::Privacy::kReadableByOthers;
}

void disable_core_dumps() { (void)platform::disable_core_dumps(); }

}  // namespace sqlpost
