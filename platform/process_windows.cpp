#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "platform/process.h"
#include "platform/windows_util.h"

namespace sqlpost::platform {
namespace {

// WerSetFlags (kernel32, Vista and later), looked up at run time: MinGW's werapi.h
// does not compile on its own. WER_FAULT_REPORTING_FLAG_NOHEAP is 1 in the SDK.
using WerSetFlagsFn = HRESULT(WINAPI*)(DWORD);
constexpr DWORD kWerNoHeap = 1;

// Written by the console control handler (another thread): lock-free.
std::atomic<bool> g_stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);

BOOL WINAPI on_console_event(DWORD event) {
  switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
      g_stop_requested.store(true, std::memory_order_relaxed);
      return TRUE;  // handled: no default termination for Ctrl+C and Ctrl+Break
    default: return FALSE;
  }
}

}  // namespace

StopRequests::StopRequests() {
  g_stop_requested.store(false);
  SetConsoleCtrlHandler(on_console_event, TRUE);
}

StopRequests::~StopRequests() { SetConsoleCtrlHandler(on_console_event, FALSE); }

bool StopRequests::requested() { return g_stop_requested.load(); }

void StopRequests::request() { g_stop_requested.store(true); }

long process_id() { return static_cast<long>(GetCurrentProcessId()); }

Result<> disable_core_dumps() {
  // No "program stopped working" dialog that keeps the process (and its memory) alive.
  SetErrorMode(GetErrorMode() | SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  // Windows Error Reporting keeps its reports, but without the heap (the secrets).
  const HMODULE kernel = GetModuleHandleW(L"kernel32.dll");
  const auto wer_set_flags = reinterpret_cast<WerSetFlagsFn>(
      reinterpret_cast<void*>(GetProcAddress(kernel, "WerSetFlags")));
  if (wer_set_flags == nullptr) return success();  // no Windows Error Reporting here
  const HRESULT rc = wer_set_flags(kWerNoHeap);
  if (FAILED(rc)) {
    return make_error(Errc::kInternal, "cannot keep the heap out of crash reports: " +
                                           win::system_message(static_cast<DWORD>(rc)));
  }
  return success();
}

std::tm utc_time(std::time_t t) {
  std::tm tm{};
  gmtime_s(&tm, &t);
  return tm;
}

std::tm local_time(std::time_t t) {
  std::tm tm{};
  localtime_s(&tm, &t);
  return tm;
}

std::time_t local_timestamp(std::tm local) { return std::mktime(&local); }

int run_shell_command(const std::string& command,
                      const std::vector<std::pair<std::string, std::string>>& environment) {
  for (const auto& [name, value] : environment) {
    (void)_putenv_s(name.c_str(), value.c_str());  // inherited by the child
  }
  const int status = std::system(command.c_str());
  for (const auto& [name, value] : environment) {
    (void)_putenv_s(name.c_str(), "");  // an empty value removes the variable
  }
  return status;
}

namespace {

struct PipeClose {
  void operator()(FILE* pipe) const { (void)_pclose(pipe); }
};

}  // namespace

Result<CommandOutput> capture_shell_command(const std::string& command, std::size_t max_stdout,
                                            std::chrono::milliseconds /*timeout: not on Windows*/) {
  const std::string line = command + " <NUL";
  std::unique_ptr<FILE, PipeClose> pipe(_popen(line.c_str(), "rb"));
  if (!pipe) {
    return make_error(Errc::kInternal, "cannot start a command through cmd.exe");
  }
  CommandOutput result;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) {
    result.out.append(buffer.data(), n);
    if (result.out.size() > max_stdout) {
      result.out.resize(max_stdout);
      result.truncated = true;
    }
  }
  result.exit_status = _pclose(pipe.release());
  return result;
}

}  // namespace sqlpost::platform
