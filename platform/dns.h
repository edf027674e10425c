// sqlpost/platform/dns.h — DNS lookups for direct send (MX, then addresses).
//
// Contract: open_resolver() makes a Resolver that asks one DNS server: the system's
// (empty DnsServer::address: /etc/resolv.conf on POSIX) or the IPv4 address and port
// given (tests run their own server on a high port). On POSIX it is glibc's libresolv
// (res_nquery, ns_initparse, ns_parserr: the C library parses the packets, we never
// do); on Windows open_resolver() fails with kUnsupported (direct send is not in the
// Windows build, docs/windows.md).
//
// Results: mx() returns the MX records of a domain sorted by preference (stable:
// equal preferences keep the server's order), or an empty vector when the domain
// exists and has no MX (then RFC 5321 §5.1 says: deliver to the domain itself).
// addresses() returns the IPv4 then IPv6 addresses of a host as text, empty when it
// has none; it fails only when neither the A nor the AAAA lookup found an address and
// one of them failed (then with that failure). Errors: kNotFound (the name does not exist:
// NXDOMAIN), kTransient (no answer, server failure, timeout: try later), kInvalidArgument (not a
// domain name).
//
// SECURITY: answers are hostile. At most kMaxDnsRecords records of an answer are
// looked at, names longer than 253 bytes or with characters other than letters,
// digits, '-', '_' and '.' are dropped, and a "." MX host (RFC 7505 null MX) is
// returned as an empty host name for the caller to refuse. Not thread-safe: one
// thread per Resolver.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sqlpost::platform {

inline constexpr std::size_t kMaxDnsRecords = 32;  // records read from one answer
inline constexpr std::size_t kMaxDnsNameBytes = 253;

struct DnsServer {
  std::string address;  // dotted IPv4; empty: the system's resolver configuration
  std::uint16_t port = 53;
  std::chrono::milliseconds timeout{10'000};  // per query, retries included
};

struct MxRecord {
  std::uint16_t preference = 0;
  std::string host;  // empty: null MX ("."), the domain accepts no mail
};

class Resolver {
 public:
  Resolver() = default;
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  Resolver(Resolver&&) = delete;
  Resolver& operator=(Resolver&&) = delete;
  virtual ~Resolver() = default;

  virtual Result<std::vector<MxRecord>> mx(std::string_view domain) = 0;
  virtual Result<std::vector<std::string>> addresses(std::string_view host) = 0;
  // "127.0.0.1:5353" or "the system resolver", for messages.
  [[nodiscard]] virtual std::string name() const = 0;
};

// kConfig for an address that is not dotted IPv4; kUnsupported on Windows.
Result<std::unique_ptr<Resolver>> open_resolver(const DnsServer& server);

// "a.b.c.d" or "a.b.c.d:port" (port 1..65535) into a DnsServer; kInvalidArgument else.
Result<DnsServer> parse_dns_server(std::string_view text);

// True for 1..253 bytes of letters, digits, '-', '_' and '.'.
bool is_dns_name(std::string_view name);

}  // namespace sqlpost::platform
