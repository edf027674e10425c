// platform/net.h on Windows: WSAPoll() on one SOCKET.
#include <winsock2.h>

#include <string>

#include "platform/net.h"

namespace sqlpost::platform {

Result<bool> wait_socket(std::uintptr_t socket, bool write, std::chrono::milliseconds timeout) {
  WSAPOLLFD entry{};
  entry.fd = static_cast<SOCKET>(socket);
  entry.events = static_cast<SHORT>(write ? POLLWRNORM : POLLRDNORM);
  const int ready = ::WSAPoll(&entry, 1, static_cast<INT>(timeout.count()));
  if (ready == SOCKET_ERROR) {
    return make_error(Errc::kInternal,
                      "WSAPoll failed (error " + std::to_string(WSAGetLastError()) + ")");
  }
  if (ready > 0 && (entry.revents & POLLNVAL) != 0) {
    return make_error(Errc::kInternal, "WSAPoll: the socket is not open");
  }
  return ready > 0;
}

}  // namespace sqlpost::platform
