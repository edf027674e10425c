// sqlpost/platform/files.h — the file-system calls whose semantics differ by OS.
//
// Contract: every call here has a POSIX implementation (files_posix.cpp) and a
// Windows one (files_windows.cpp); callers never use open/fsync/rename/flock or
// their Win32 counterparts directly. Errors name the operation and the path, as
// "cannot open P: <the OS's reason>"; a missing file or folder is Errc::kNotFound,
// every other failure Errc::kIOError (Errc::kBusy for a held lock). "Owner only"
// means mode 0600 on POSIX and, on Windows, a protected DACL (no inherited
// entries) that grants the current user alone full access. Nothing here retries
// or sleeps; EINTR is retried on POSIX.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sqlpost::platform {

// One open file, closed when destroyed.
class File {
 public:
  static Result<File> open_read(const std::filesystem::path& path);
  // A new file for writing, owner only; Errc::kIOError when it exists already.
  static Result<File> create_new(const std::filesystem::path& path);

  File(File&& other) noexcept;
  File& operator=(File&&) = delete;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  [[nodiscard]] Result<std::uint64_t> size() const;
  // Up to buffer.size() bytes; 0 at the end of the file.
  Result<std::size_t> read(std::span<char> buffer);
  Result<> write_all(std::string_view data);
  // The file's data and size on stable storage (fsync, FlushFileBuffers).
  Result<> sync();
  // Closes now and reports what closing reports (delayed write errors).
  Result<> close();

 private:
  File(std::intptr_t handle, std::filesystem::path path);
  std::intptr_t handle_;  // a file descriptor (POSIX) or a HANDLE (Windows); -1 when closed
  std::filesystem::path path_;
};

// An exclusive lock on a lock file (created owner only if missing), held until
// destroyed or the process ends (flock; LockFileEx). Never waits: Errc::kBusy when
// another holder has it, also another FileLock of the same process.
class FileLock {
 public:
  static Result<FileLock> try_acquire(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(std::intptr_t handle) : handle_(handle) {}
  std::intptr_t handle_;
};

// Makes the entries of `dir` (a rename or create in it) durable. POSIX: fsync of
// the directory. Windows: nothing to do (NTFS journals metadata, and rename_replace
// writes through).
Result<> sync_directory(const std::filesystem::path& dir);

// Makes the data of every file in `files` durable, as File::sync() on each would, in
// as few steps as the OS has: a caller that wrote many files (the file link's mails
// of a pass) pays one flush instead of one per file. Linux: one syncfs() per file
// system the files are on (write-back errors are reported by Linux 5.8 and later);
// other POSIX: fsync of each file; Windows: FlushFileBuffers of each file.
Result<> sync_files(std::span<const std::filesystem::path> files);

// Makes the entries of every folder in `dirs` durable, as sync_directory() on each
// would. Linux: one syncfs() per file system; other POSIX: fsync of each distinct
// folder once; Windows: nothing to do (as sync_directory()).
Result<> sync_directories(std::span<const std::filesystem::path> dirs);

// Renames `from` to `to` in one step, replacing `to` when it exists (rename;
// MoveFileExW with MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH).
Result<> rename_replace(const std::filesystem::path& from, const std::filesystem::path& to);

// Gives the file `existing` a second name `created`; fails when `created` exists
// (link; CreateHardLinkW). Message: "cannot create <created>: ...".
Result<> link_new(const std::filesystem::path& existing, const std::filesystem::path& created);

Result<> remove_file(const std::filesystem::path& path);

// Makes an existing file owner only (chmod 0600; a protected owner-only DACL).
Result<> restrict_to_owner(const std::filesystem::path& path);

enum class Privacy {
  kNotRegularFile,    // missing, unreadable or not a regular file
  kOwnerOnly,         // POSIX: no group/other bits; Windows: no ACE lets others read
  kReadableByOthers,  // anyone besides the owner (and SYSTEM/Administrators) may read it
};
Privacy file_privacy(const std::filesystem::path& path);

// The command an administrator runs to make `path` owner only ("chmod 600 PATH";
// an icacls line on Windows).
std::string make_private_command(const std::string& path);

}  // namespace sqlpost::platform
