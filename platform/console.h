// sqlpost/platform/console.h — the terminal: is there one, and reading without echo.
//
// Contract: stdin_is_terminal()/stderr_is_terminal() tell whether the stream is an
// interactive terminal (isatty; a console handle on Windows). An EchoOff turns off
// the echo of typed characters on the terminal on standard input (termios; console
// mode without ENABLE_ECHO_INPUT) and restores the previous mode when destroyed; it
// does nothing when standard input is not a terminal.
#pragma once

#include <memory>

namespace sqlpost::platform {

bool stdin_is_terminal();
bool stderr_is_terminal();

class EchoOff {
 public:
  EchoOff();
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;
  EchoOff(EchoOff&&) = delete;
  EchoOff& operator=(EchoOff&&) = delete;
  ~EchoOff();

 private:
  struct Saved;                   // the terminal mode to restore (termios; a console mode)
  std::unique_ptr<Saved> saved_;  // null when standard input is not a terminal
};

}  // namespace sqlpost::platform
