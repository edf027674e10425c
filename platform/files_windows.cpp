#include <aclapi.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "platform/files.h"
#include "platform/windows_util.h"

namespace sqlpost::platform {
namespace {

namespace fs = std::filesystem;
using win::os_error;

HANDLE handle_of(std::intptr_t h) { return reinterpret_cast<HANDLE>(h); }
std::intptr_t value_of(HANDLE h) { return reinterpret_cast<std::intptr_t>(h); }

constexpr std::intptr_t kClosed = -1;  // == INVALID_HANDLE_VALUE
constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

// Opens or creates `path` owner only; `disposition` is CREATE_NEW or OPEN_ALWAYS.
Result<HANDLE> create_owner_only(const fs::path& path, DWORD access, DWORD share, DWORD disposition,
                                 const std::string& what) {
  SQLPOST_TRY_ASSIGN(win::OwnerOnlySecurity security, win::OwnerOnlySecurity::make());
  const HANDLE h = CreateFileW(path.c_str(), access, share, security.attributes(), disposition,
                               FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) return os_error(what, path, GetLastError());
  return h;
}

// True when an allow-ACE lets `sid` read, for a SID other than the trusted ones.
bool lets_others_read(const ACCESS_ALLOWED_ACE& ace, PSID user) {
  constexpr DWORD kReadRights = FILE_READ_DATA | GENERIC_READ | GENERIC_ALL;
  if ((ace.Header.AceFlags & INHERIT_ONLY_ACE) != 0 || (ace.Mask & kReadRights) == 0) {
    return false;
  }
  auto* sid = const_cast<PSID>(static_cast<const void*>(&ace.SidStart));
  return EqualSid(sid, user) == 0 && IsWellKnownSid(sid, WinLocalSystemSid) == 0 &&
         IsWellKnownSid(sid, WinBuiltinAdministratorsSid) == 0;
}

bool acl_lets_others_read(PACL dacl, PSID user) {
  if (dacl == nullptr) return true;  // a NULL DACL lets everyone in
  for (DWORD i = 0; i < dacl->AceCount; ++i) {
    void* ace = nullptr;
    if (GetAce(dacl, i, &ace) == 0) return true;
    const auto* header = static_cast<const ACE_HEADER*>(ace);
    if (header->AceType == ACCESS_ALLOWED_ACE_TYPE &&
        lets_others_read(*static_cast<const ACCESS_ALLOWED_ACE*>(ace), user)) {
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- File

File::File(std::intptr_t handle, fs::path path) : handle_(handle), path_(std::move(path)) {}

File::File(File&& other) noexcept
    : handle_(std::exchange(other.handle_, kClosed)), path_(std::move(other.path_)) {}

File::~File() {
  if (handle_ != kClosed) CloseHandle(handle_of(handle_));
}

Result<File> File::open_read(const fs::path& path) {
  const HANDLE h = CreateFileW(path.c_str(), GENERIC_READ, kShareAll, nullptr, OPEN_EXISTING,
                               FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) return os_error("cannot open", path, GetLastError());
  return File(value_of(h), path);
}

Result<File> File::create_new(const fs::path& path) {
  SQLPOST_TRY_ASSIGN(const HANDLE h,
                     create_owner_only(path, GENERIC_WRITE, 0, CREATE_NEW, "cannot create"));
  return File(value_of(h), path);
}

Result<std::uint64_t> File::size() const {
  LARGE_INTEGER size{};
  if (GetFileSizeEx(handle_of(handle_), &size) == 0) {
    return os_error("cannot stat", path_, GetLastError());
  }
  return static_cast<std::uint64_t>(size.QuadPart);
}

Result<std::size_t> File::read(std::span<char> buffer) {
  const auto want =
      static_cast<DWORD>(std::min<std::size_t>(buffer.size(), std::numeric_limits<DWORD>::max()));
  DWORD got = 0;
  if (ReadFile(handle_of(handle_), buffer.data(), want, &got, nullptr) == 0) {
    return os_error("cannot read", path_, GetLastError());
  }
  return static_cast<std::size_t>(got);
}

Result<> File::write_all(std::string_view data) {
  while (!data.empty()) {
    const auto want =
        static_cast<DWORD>(std::min<std::size_t>(data.size(), std::numeric_limits<DWORD>::max()));
    DWORD put = 0;
    if (WriteFile(handle_of(handle_), data.data(), want, &put, nullptr) == 0) {
      return os_error("cannot write", path_, GetLastError());
    }
    data.remove_prefix(put);
  }
  return success();
}

Result<> File::sync() {
  if (FlushFileBuffers(handle_of(handle_)) == 0) {
    return os_error("cannot fsync", path_, GetLastError());
  }
  return success();
}

Result<> File::close() {
  if (CloseHandle(handle_of(std::exchange(handle_, kClosed))) == 0) {
    return os_error("cannot close", path_, GetLastError());
  }
  return success();
}

// ---- FileLock

Result<FileLock> FileLock::try_acquire(const fs::path& path) {
  SQLPOST_TRY_ASSIGN(const HANDLE h,
                     create_owner_only(path, GENERIC_READ | GENERIC_WRITE, kShareAll, OPEN_ALWAYS,
                                       "cannot open lock file"));
  FileLock lock(value_of(h));
  OVERLAPPED whole_file{};
  if (LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, MAXDWORD, MAXDWORD,
                 &whole_file) == 0) {
    return make_error(Errc::kBusy, path.string() + " is locked by another process");
  }
  return lock;
}

FileLock::FileLock(FileLock&& other) noexcept : handle_(std::exchange(other.handle_, kClosed)) {}

FileLock::~FileLock() {
  // Closing the handle releases the lock (as the end of the process does).
  if (handle_ != kClosed) CloseHandle(handle_of(handle_));
}

// ---- Names

Result<> sync_directory(const fs::path& /*dir*/) { return success(); }

// Windows has no flush of a whole volume for an unprivileged process: each file is
// opened for writing and flushed on its own.
Result<> sync_files(std::span<const fs::path> files) {
  for (const fs::path& file : files) {
    const HANDLE h = CreateFileW(file.c_str(), GENERIC_WRITE, kShareAll, nullptr, OPEN_EXISTING,
                                 FILE_ATTRIBUTE_NORMAL, nullptr);
    if (h == INVALID_HANDLE_VALUE) return os_error("cannot open", file, GetLastError());
    const BOOL flushed = FlushFileBuffers(h);
    const DWORD err = GetLastError();
    CloseHandle(h);
    if (flushed == 0) return os_error("cannot fsync", file, err);
  }
  return success();
}

Result<> sync_directories(std::span<const fs::path> /*dirs*/) { return success(); }

Result<> rename_replace(const fs::path& from, const fs::path& to) {
  if (MoveFileExW(from.c_str(), to.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ==
      0) {
    return os_error("cannot rename", from, GetLastError());
  }
  return success();
}

Result<> link_new(const fs::path& existing, const fs::path& created) {
  if (CreateHardLinkW(created.c_str(), existing.c_str(), nullptr) == 0) {
    return os_error("cannot create", created, GetLastError());
  }
  return success();
}

Result<> remove_file(const fs::path& path) {
  if (DeleteFileW(path.c_str()) == 0) return os_error("cannot remove", path, GetLastError());
  return success();
}

// ---- Owner only

Result<> restrict_to_owner(const fs::path& path) {
  SQLPOST_TRY_ASSIGN(const win::OwnerOnlySecurity security, win::OwnerOnlySecurity::make());
  std::wstring name = path.wstring();
  const DWORD rc = SetNamedSecurityInfoW(
      name.data(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
      nullptr, nullptr, security.dacl(), nullptr);
  if (rc != ERROR_SUCCESS) return os_error("cannot make owner only", path, rc);
  return success();
}

Privacy file_privacy(const fs::path& path) {
  const DWORD attributes = GetFileAttributesW(path.c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES || (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0) {
    return Privacy::kNotRegularFile;
  }
  auto user = win::current_user_sid();
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  const DWORD rc = GetNamedSecurityInfoW(path.c_str(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION,
                                         nullptr, nullptr, &dacl, nullptr, &descriptor);
  const win::LocalPtr owner(descriptor);
  if (rc != ERROR_SUCCESS || !user.ok()) return Privacy::kReadableByOthers;  // cannot tell
  return acl_lets_others_read(dacl, user->get()) ? Privacy::kReadableByOthers : Privacy::kOwnerOnly;
}

std::string make_private_command(const std::string& path) {
  return "icacls \"" + path + "\" /inheritance:r /grant:r \"%USERNAME%\":F";
}

}  // namespace sqlpost::platform
