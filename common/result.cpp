#include "common/result.h"

namespace sqlpost {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kCorruption: return "corrupt input";
    case Errc::kAuthentication: return "authentication failed";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kLimitExceeded: return "limit exceeded";
    case Errc::kIOError: return "I/O error";
    case Errc::kDatabase: return "database error";
    case Errc::kBusy: return "busy";
    case Errc::kAgentRunning: return "agent running";
    case Errc::kConfig: return "configuration error";
    case Errc::kTransient: return "transient failure";
    case Errc::kPermanent: return "permanent failure";
    case Errc::kTimeout: return "timeout";
    case Errc::kInternal: return "internal error";
  }
  return "unknown error";
}

}  // namespace sqlpost
