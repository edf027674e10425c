// platform/dns.h on Windows: direct send is not part of the Windows build (it would
// need DnsQuery_A and a way to name the port of a test resolver); a site there sends
// through its relay (smtp.mode=relay). docs/windows.md says so.
#include "platform/dns.h"

namespace sqlpost::platform {

Result<std::unique_ptr<Resolver>> open_resolver(const DnsServer& /*server*/) {
  return make_error(Errc::kUnsupported,
                    "direct send (smtp.mode=direct) is not available in the Windows build; "
                    "send through an SMTP relay (smtp.mode=relay, smtp.host=...)");
}

}  // namespace sqlpost::platform
