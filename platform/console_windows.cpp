#include "platform/console.h"
#include "platform/windows_util.h"

namespace sqlpost::platform {
namespace {

bool is_console(DWORD which) {
  DWORD mode = 0;
  return GetConsoleMode(GetStdHandle(which), &mode) != 0;
}

}  // namespace

struct EchoOff::Saved {
  DWORD mode = 0;
};

bool stdin_is_terminal() { return is_console(STD_INPUT_HANDLE); }

bool stderr_is_terminal() { return is_console(STD_ERROR_HANDLE); }

EchoOff::EchoOff() {
  const HANDLE input = GetStdHandle(STD_INPUT_HANDLE);
  DWORD mode = 0;
  if (GetConsoleMode(input, &mode) == 0) return;
  saved_ = std::make_unique<Saved>();
  saved_->mode = mode;
  SetConsoleMode(input, mode & ~static_cast<DWORD>(ENABLE_ECHO_INPUT));
}

EchoOff::~EchoOff() {
  if (saved_) SetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), saved_->mode);
}

}  // namespace sqlpost::platform
