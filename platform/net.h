// sqlpost/platform/net.h — waiting on a network socket another library opened.
//
// Contract: wait_socket() blocks until the socket `socket` (a POSIX descriptor or a
// Windows SOCKET, as an integer) is readable (or writable with `write`), has an error
// or hang-up pending (reported as ready: the next read says what happened), or
// `timeout` passed. Returns true when ready, false on timeout. An interrupted wait
// (a signal) returns false, so the caller looks at its stop flag at once. kInternal
// when the OS refuses the wait (e.g. a closed socket). POSIX: poll(); Windows: WSAPoll().
#pragma once

#include <chrono>
#include <cstdint>

#include "common/result.h"

namespace sqlpost::platform {

Result<bool> wait_socket(std::uintptr_t socket, bool write, std::chrono::milliseconds timeout);

}  // namespace sqlpost::platform
