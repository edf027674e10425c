// sqlpost/transport/curl_direct.h — direct send (smtp.mode=direct): each mail goes
// straight to the mail servers (MX) of its recipient's domain, without a relay.
//
// Contract: DirectSmtpLink::send() looks up the MX records of the recipient's domain
// (platform/dns.h), sorts them by preference and tries each host's addresses in that
// order (at most kMaxMxHosts hosts, kMaxMxAddresses addresses each); a domain without
// MX is its own mail server (RFC 5321 §5.1: its A/AAAA records). Each attempt is an
// SmtpLink to the MX host name on config.smtp.server's port (0: 25), connected to the
// looked-up address, with the site's security: STARTTLS required and the certificate
// checked against the MX host name (kStartTls, the default), implicit TLS (kTls) or
// clear text (kNone); tls.verify/ca_file as for a relay. No AUTH is ever sent to an MX
// (user and password are dropped). The next MX is tried after a connection failure,
// a timeout, a TLS or STARTTLS failure, or a 4xx reply; a 5xx reply ends the attempt
// (the domain refused the mail). The link that took a domain's last mail is kept and
// reused for the next mail to that domain (at most kMaxOpenDomains domains).
//
// Errors (each names the recipient, the domain and, per MX tried, host, address and
// what failed): kPermanent — the domain does not exist (NXDOMAIN), has no MX and no
// address, accepts no mail (null MX, RFC 7505), or an MX refused with 5xx;
// kConfig — every MX failed TLS (certificate not trusted, no STARTTLS); kTransient —
// DNS did not answer, or no MX could be reached (connection refused, timeout, 4xx);
// kInvalidArgument — a bad address or mail. list/fetch/remove: kUnsupported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "platform/dns.h"
#include "transport/curl_check.h"
#include "transport/curl_smtp.h"
#include "transport/link.h"

namespace sqlpost::transport {

inline constexpr std::size_t kMaxMxHosts = 10;       // MX hosts tried per mail
inline constexpr std::size_t kMaxMxAddresses = 4;    // addresses tried per MX host
inline constexpr std::size_t kMaxOpenDomains = 16;   // domains whose connection is kept
inline constexpr std::uint16_t kDefaultMxPort = 25;  // where MX servers listen

struct DirectConfig {
  // server.port: the MX port (0: 25); security, ca_file, verify and timeouts apply to
  // every MX. server.host, user, password are not used.
  SmtpConfig smtp;
  platform::DnsServer dns;  // empty address: the system resolver
};

// One address of one mail server of a domain, in the order to try.
struct MxTarget {
  std::uint16_t preference = 0;
  std::string host;     // the MX host name (or the domain itself, no MX)
  std::string address;  // an IPv4 or IPv6 address of host
};

struct MxRoute {
  std::vector<MxTarget> targets;
  std::vector<std::string> problems;  // MX hosts that were left out, and why
  bool implicit = false;              // no MX: the domain's own address
};

// The targets for `domain`, or the error (as for send()) when there is none.
Result<MxRoute> find_mx_route(platform::Resolver& resolver, std::string_view domain);

class DirectSmtpLink final : public Link {
 public:
  // kConfig for unusable settings or resolver; nothing is contacted yet.
  static Result<std::unique_ptr<DirectSmtpLink>> open(DirectConfig config);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  Result<> remove(const MailRef& ref) override;

  DirectSmtpLink(DirectConfig config, std::unique_ptr<platform::Resolver> resolver);  // open()

 private:
  Result<> send_by_route(const std::string& domain, std::string_view to_address,
                         std::string_view mail);
  [[nodiscard]] SmtpConfig attempt_config(const MxTarget& target) const;

  DirectConfig config_;
  std::unique_ptr<platform::Resolver> resolver_;
  std::map<std::string, std::unique_ptr<SmtpLink>> open_;  // domain -> the MX that took mail
};

// `sqlpost check` for direct send to `domain`: a step "MX" (the lookup: hosts in
// order, or why there is none), then for each target in order the SMTP steps of
// check_smtp() until one target passes; a target that failed is one ok=true step
// "fallback" naming it and its failure, so only the last target's failure fails the
// check. Errors as check_smtp().
Result<std::vector<CheckStep>> check_direct(const DirectConfig& config, std::string_view domain);

}  // namespace sqlpost::transport
