// platform/net.h on POSIX: poll() on one descriptor.
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "platform/net.h"

namespace sqlpost::platform {

Result<bool> wait_socket(std::uintptr_t socket, bool write, std::chrono::milliseconds timeout) {
  pollfd entry{};
  entry.fd = static_cast<int>(socket);
  entry.events = static_cast<short>(write ? POLLOUT : POLLIN);
  const int ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno == EINTR) {
    return false;
  }
  if (ready < 0) {
    return make_error(Errc::kInternal, std::string("poll: ") + std::strerror(errno));
  }
  if (ready > 0 && (entry.revents & POLLNVAL) != 0) {
    return make_error(Errc::kInternal, "poll: the socket is not open");
  }
  return ready > 0;
}

}  // namespace sqlpost::platform
