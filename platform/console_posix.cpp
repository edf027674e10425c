#include <termios.h>
#include <unistd.h>

#include "platform/console.h"

namespace sqlpost::platform {

struct EchoOff::Saved {
  termios mode{};
};

bool stdin_is_terminal() { return ::isatty(STDIN_FILENO) == 1; }

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

EchoOff::EchoOff() {
  if (!stdin_is_terminal()) return;
  saved_ = std::make_unique<Saved>();
  ::tcgetattr(STDIN_FILENO, &saved_->mode);
  termios quiet = saved_->mode;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
}

EchoOff::~EchoOff() {
  if (saved_) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_->mode);
}

}  // namespace sqlpost::platform
