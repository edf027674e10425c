// sqlpost/platform/windows_util.h — helpers shared by the Windows implementation
// (not part of the seam): error text, owned HANDLEs and owner-only security.
#pragma once

#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00  // Windows 10 / Server 2016 and later
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/result.h"

namespace sqlpost::platform::win {

// The system's text for a GetLastError() code, without the trailing newline.
std::string system_message(DWORD code);

// "<what> <path>: <reason>"; Errc::kNotFound for a missing file or folder.
Error os_error(const std::string& what, const std::filesystem::path& path, DWORD code);

// Memory the system allocated with LocalAlloc.
struct LocalFreer {
  void operator()(void* p) const { LocalFree(p); }
};
using LocalPtr = std::unique_ptr<void, LocalFreer>;

// A security descriptor whose DACL is protected (inherits nothing) and grants the
// current user alone full access: the Windows form of mode 0600.
class OwnerOnlySecurity {
 public:
  static Result<OwnerOnlySecurity> make();
  SECURITY_ATTRIBUTES* attributes() { return &attributes_; }
  [[nodiscard]] PACL dacl() const;

 private:
  explicit OwnerOnlySecurity(LocalPtr descriptor);
  LocalPtr descriptor_;
  SECURITY_ATTRIBUTES attributes_{};
};

// The SID of the user this process runs as, as LocalAlloc'd copy.
Result<LocalPtr> current_user_sid();

}  // namespace sqlpost::platform::win
