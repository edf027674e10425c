#include "platform/windows_util.h"

#include <sddl.h>

#include <vector>

namespace sqlpost::platform::win {
namespace {

struct HandleCloser {
  void operator()(HANDLE h) const { CloseHandle(h); }
};
using UniqueHandle = std::unique_ptr<std::remove_pointer_t<HANDLE>, HandleCloser>;

}  // namespace

std::string system_message(DWORD code) {
  char* text = nullptr;
  const DWORD n = FormatMessageA(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, code, 0, reinterpret_cast<LPSTR>(&text), 0, nullptr);
  const LocalPtr owner(text);
  std::string message = n > 0 ? std::string(text, n) : "error " + std::to_string(code);
  while (!message.empty() && (message.back() == '\n' || message.back() == '\r' ||
                              message.back() == ' ' || message.back() == '.')) {
    message.pop_back();
  }
  return message;
}

Error os_error(const std::string& what, const std::filesystem::path& path, DWORD code) {
  const bool missing = code == ERROR_FILE_NOT_FOUND || code == ERROR_PATH_NOT_FOUND;
  return make_error(missing ? Errc::kNotFound : Errc::kIOError,
                    what + " " + path.string() + ": " + system_message(code));
}

Result<LocalPtr> current_user_sid() {
  HANDLE raw = nullptr;
  if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw) == 0) {
    return make_error(Errc::kInternal,
                      "cannot open the process token: " + system_message(GetLastError()));
  }
  const UniqueHandle token(raw);
  DWORD size = 0;
  GetTokenInformation(token.get(), TokenUser, nullptr, 0, &size);
  std::vector<unsigned char> buffer(size);
  if (size == 0 || GetTokenInformation(token.get(), TokenUser, buffer.data(), size, &size) == 0) {
    return make_error(Errc::kInternal,
                      "cannot read the process user: " + system_message(GetLastError()));
  }
  const auto* user = reinterpret_cast<const TOKEN_USER*>(buffer.data());
  const DWORD sid_size = GetLengthSid(user->User.Sid);
  LocalPtr copy(LocalAlloc(LMEM_FIXED, sid_size));
  if (!copy || CopySid(sid_size, copy.get(), user->User.Sid) == 0) {
    return make_error(Errc::kInternal, "cannot copy the process user's SID");
  }
  return copy;
}

OwnerOnlySecurity::OwnerOnlySecurity(LocalPtr descriptor) : descriptor_(std::move(descriptor)) {
  attributes_.nLength = sizeof(attributes_);
  attributes_.lpSecurityDescriptor = descriptor_.get();
  attributes_.bInheritHandle = FALSE;
}

Result<OwnerOnlySecurity> OwnerOnlySecurity::make() {
  SQLPOST_TRY_ASSIGN(const LocalPtr sid, current_user_sid());
  LPSTR sid_text = nullptr;
  if (ConvertSidToStringSidA(sid.get(), &sid_text) == 0) {
    return make_error(Errc::kInternal,
                      "cannot render the process user's SID: " + system_message(GetLastError()));
  }
  const LocalPtr sid_owner(sid_text);
  // D:P = a protected DACL; (A;;FA;;;SID) = allow file-all-access to that SID alone.
  const std::string sddl = std::string("D:P(A;;FA;;;") + sid_text + ")";
  PSECURITY_DESCRIPTOR descriptor = nullptr;
  if (ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl.c_str(), SDDL_REVISION_1,
                                                           &descriptor, nullptr) == 0) {
    return make_error(Errc::kInternal, "cannot build an owner-only security descriptor: " +
                                           system_message(GetLastError()));
  }
  return OwnerOnlySecurity(LocalPtr(descriptor));
}

PACL OwnerOnlySecurity::dacl() const {
  BOOL present = FALSE;
  BOOL defaulted = FALSE;
  PACL acl = nullptr;
  GetSecurityDescriptorDacl(descriptor_.get(), &present, &acl, &defaulted);
  return present != 0 ? acl : nullptr;
}

}  // namespace sqlpost::platform::win
