#include "agent/atomic_file.h"

#include <filesystem>

#include "platform/files.h"
#include "platform/process.h"

namespace sqlpost {
namespace {

Result<> write_then_rename(const std::string& tmp, const std::string& path, std::string_view text) {
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::create_new(tmp));
  SQLPOST_TRY(file.write_all(text));
  SQLPOST_TRY(file.sync());
  SQLPOST_TRY(file.close());
  namespace fs = std::filesystem;
  std::error_code ec;  // best effort: a file system without modes keeps its default
  fs::permissions(tmp,
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                      fs::perms::others_read,
                  ec);
  return platform::rename_replace(tmp, path);
}

}  // namespace

Result<> replace_file(const std::string& path, std::string_view text) {
  const std::string tmp = path + ".tmp." + std::to_string(platform::process_id());
  (void)platform::remove_file(tmp);  // a leftover of a killed run
  auto written = write_then_rename(tmp, path, text);
  if (!written.ok()) {
    (void)platform::remove_file(tmp);
  }
  return written;
}

}  // namespace sqlpost
