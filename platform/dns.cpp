// The OS-independent part of platform/dns.h: parsing a resolver address, names.
#include <algorithm>
#include <charconv>

#include "platform/dns.h"

namespace sqlpost::platform {
namespace {

// One decimal number of `text` from..to, or -1.
long number_of(std::string_view text, long max) {
  long value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 5 || ec != std::errc() || end != text.data() + text.size() ||
      value < 0 || value > max) {
    return -1;
  }
  return value;
}

bool dotted_ipv4(std::string_view text) {
  int parts = 0;
  while (parts < 4) {
    const std::size_t dot = text.find('.');
    if (number_of(text.substr(0, dot), 255) < 0) {
      return false;
    }
    ++parts;
    if (dot == std::string_view::npos) {
      break;
    }
    text.remove_prefix(dot + 1);
  }
  return parts == 4 && text.find('.') == std::string_view::npos;
}

}  // namespace

bool is_dns_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxDnsNameBytes &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
         });
}

Result<DnsServer> parse_dns_server(std::string_view text) {
  DnsServer server;
  const std::size_t colon = text.find(':');
  server.address = std::string(text.substr(0, colon));
  if (colon != std::string_view::npos) {
    const long port = number_of(text.substr(colon + 1), 65535);
    if (port < 1) {
      return make_error(Errc::kInvalidArgument, "'" + std::string(text.substr(0, 64)) +
                                                    "': the port must be from 1 to 65535");
    }
    server.port = static_cast<std::uint16_t>(port);
  }
  if (!dotted_ipv4(server.address)) {
    return make_error(
        Errc::kInvalidArgument,
        "'" + std::string(text.substr(0, 64)) +
            "' is not an IPv4 address with an optional port (a.b.c.d or a.b.c.d:port)");
  }
  return server;
}

}  // namespace sqlpost::platform
