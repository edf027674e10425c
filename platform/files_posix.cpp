#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "platform/files.h"

namespace sqlpost::platform {
namespace {

namespace fs = std::filesystem;

Error os_error(const std::string& what, const fs::path& path, int err) {
  const Errc code = (err == ENOENT) ? Errc::kNotFound : Errc::kIOError;
  return make_error(code, what + " " + path.string() + ": " + std::strerror(err));
}

int fd_of(std::intptr_t handle) { return static_cast<int>(handle); }

}  // namespace

// ---- File

File::File(std::intptr_t handle, fs::path path) : handle_(handle), path_(std::move(path)) {}

File::File(File&& other) noexcept
    : handle_(std::exchange(other.handle_, -1)), path_(std::move(other.path_)) {}

File::~File() {
  if (handle_ >= 0) ::close(fd_of(handle_));
}

Result<File> File::open_read(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return os_error("cannot open", path, errno);
  return File(fd, path);
}

Result<File> File::create_new(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return os_error("cannot create", path, errno);
  return File(fd, path);
}

Result<std::uint64_t> File::size() const {
  struct stat st {};
  if (::fstat(fd_of(handle_), &st) != 0) return os_error("cannot stat", path_, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

Result<std::size_t> File::read(std::span<char> buffer) {
  for (;;) {
    const ssize_t n = ::read(fd_of(handle_), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("cannot read", path_, errno);
    return static_cast<std::size_t>(n);
  }
}

Result<> File::write_all(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_of(handle_), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return os_error("cannot write", path_, errno);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return success();
}

Result<> File::sync() {
  if (::fsync(fd_of(handle_)) != 0) return os_error("cannot fsync", path_, errno);
  return success();
}

Result<> File::close() {
  if (::close(fd_of(std::exchange(handle_, -1))) != 0) {
    return os_error("cannot close", path_, errno);
  }
  return success();
}

// ---- FileLock

Result<FileLock> FileLock::try_acquire(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return os_error("cannot open lock file", path, errno);
  FileLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return make_error(Errc::kBusy, path.string() + " is locked by another process");
  }
  return lock;
}

FileLock::FileLock(FileLock&& other) noexcept : handle_(std::exchange(other.handle_, -1)) {}

FileLock::~FileLock() {
  if (handle_ >= 0) ::close(fd_of(handle_));
}

// ---- Names

Result<> sync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_error("cannot fsync directory", dir, err);
  return success();
}

namespace {

#if !defined(__linux__)
// fsync of one file or folder, opened for it.
Result<> fsync_path(const fs::path& path, int flags, const char* what) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return os_error("cannot open", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_error(what, path, err);
  return success();
}
#else
// One syncfs() per file system the paths are on: it writes back every dirty page and
// inode of that file system and commits its journal, so the data of the files and
// the entries of the folders are durable at once. The descriptor is opened just
// before the call: an unseen write-back error is still reported to it (errseq).
Result<> sync_file_systems(std::span<const fs::path> paths) {
  std::set<dev_t> done;
  for (const fs::path& path : paths) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) return os_error("cannot stat", path, errno);
    if (!done.insert(info.st_dev).second) continue;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_error("cannot open", path, errno);
    const int rc = ::syncfs(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return os_error("cannot syncfs the file system of", path, err);
  }
  return success();
}
#endif

}  // namespace

Result<> sync_files(std::span<const fs::path> files) {
#if defined(__linux__)
  return sync_file_systems(files);
#else
  for (const fs::path& file : files) {
    SQLPOST_TRY(fsync_path(file, O_RDONLY, "cannot fsync"));
  }
  return success();
#endif
}

Result<> sync_directories(std::span<const fs::path> dirs) {
#if defined(__linux__)
  return sync_file_systems(dirs);
#else
  std::set<fs::path> done;
  for (const fs::path& dir : dirs) {
    if (!done.insert(dir).second) continue;
    SQLPOST_TRY(fsync_path(dir, O_RDONLY | O_DIRECTORY, "cannot fsync directory"));
  }
  return success();
#endif
}

Result<> rename_replace(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return os_error("cannot rename", from, errno);
  }
  return success();
}

Result<> link_new(const fs::path& existing, const fs::path& created) {
  if (::link(existing.c_str(), created.c_str()) != 0) {
    return os_error("cannot create", created, errno);
  }
  return success();
}

Result<> remove_file(const fs::path& path) {
  if (::unlink(path.c_str()) != 0) return os_error("cannot remove", path, errno);
  return success();
}

// ---- Owner only

Result<> restrict_to_owner(const fs::path& path) {
  if (::chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0) {
    return os_error("cannot make owner only", path, errno);
  }
  return success();
}

Privacy file_privacy(const fs::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return Privacy::kNotRegularFile;
  }
  return (info.st_mode & (S_IRWXG | S_IRWXO)) != 0 ? Privacy::kReadableByOthers
                                                   : Privacy::kOwnerOnly;
}

std::string make_private_command(const std::string& path) { return "chmod 600 " + path; }

}  // namespace sqlpost::platform
