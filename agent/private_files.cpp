#include "agent/private_files.h"

#include <sys/resource.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstring>

namespace sqlpost {

Result<std::vector<std::string>> make_private(const std::string& db_path) {
  std::vector<std::string> tightened;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string path = db_path + suffix;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      continue;  // a companion that does not exist (yet: SQLite copies the mode)
    }
    if ((st.st_mode & 0777) == 0600) {
      continue;
    }
    if (::chmod(path.c_str(), 0600) != 0) {
      return make_error(Errc::kIOError,
                        "cannot make " + path + " private (mode 0600): " + std::strerror(errno));
    }
    tightened.push_back(path);
  }
  return tightened;
}

Result<bool> shared_with_others(const std::string& db_path) {
  struct stat st {};
  if (::stat(db_path.c_str(), &st) != 0) {
    return make_error(Errc::kIOError,
                      "cannot read the mode of " + db_path + ": " + std::strerror(errno));
  }
  return (st.st_mode & 0077) != 0;
}

void disable_core_dumps() {
  const rlimit none{0, 0};
  (void)::setrlimit(RLIMIT_CORE, &none);
#if defined(__linux__)
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

}  // namespace sqlpost
