#include "transport/curl_direct.h"

#include <algorithm>
#include <utility>

namespace sqlpost::transport {
namespace {

std::string domain_of(std::string_view address) {
  return std::string(address.substr(address.find('@') + 1));
}

std::string target_name(const MxTarget& target, std::uint16_t port) {
  const bool ipv6 = target.address.find(':') != std::string::npos;
  return target.host + " (" + (ipv6 ? "[" + target.address + "]" : target.address) + ":" +
         std::to_string(port) + ")";
}

std::string joined(const std::vector<std::string>& parts) {
  std::string text;
  for (const auto& part : parts) {
    text += (text.empty() ? "" : "; ") + part;
  }
  return text;
}

// The MX hosts of `domain` in order, or the domain itself when it has none.
Result<std::vector<platform::MxRecord>> mx_hosts(platform::Resolver& resolver,
                                                 std::string_view domain, bool& implicit) {
  auto records = resolver.mx(domain);
  if (!records.ok()) {
    const Errc code =
        records.error().code == Errc::kNotFound ? Errc::kPermanent : records.error().code;
    return make_error(code, "the domain " + std::string(domain) +
                                " has no mail servers: " + records.error().message);
  }
  implicit = records->empty();
  if (implicit) {
    return std::vector<platform::MxRecord>{{0, std::string(domain)}};
  }
  const bool null_mx = std::any_of(records->begin(), records->end(),
                                   [](const platform::MxRecord& r) { return r.host.empty(); });
  if (null_mx) {
    return make_error(Errc::kPermanent, "the domain " + std::string(domain) +
                                            " accepts no mail (null MX, RFC 7505, at " +
                                            resolver.name() + ")");
  }
  if (records->size() > kMaxMxHosts) {
    records->resize(kMaxMxHosts);
  }
  return std::move(records).value();
}

// Why every attempt failed: kConfig when each was a TLS problem, else kTransient.
Errc overall_code(const std::vector<Errc>& codes) {
  const bool all_config = !codes.empty() && std::all_of(codes.begin(), codes.end(),
                                                        [](Errc c) { return c == Errc::kConfig; });
  return all_config ? Errc::kConfig : Errc::kTransient;
}

}  // namespace

Result<MxRoute> find_mx_route(platform::Resolver& resolver, std::string_view domain) {
  MxRoute route;
  SQLPOST_TRY_ASSIGN(const auto hosts, mx_hosts(resolver, domain, route.implicit));
  for (const auto& mx : hosts) {
    auto addresses = resolver.addresses(mx.host);
    if (!addresses.ok()) {
      route.problems.push_back("MX " + mx.host + ": " + addresses.error().message);
      continue;
    }
    if (addresses->empty()) {
      route.problems.push_back("MX " + mx.host + ": no address (A/AAAA) at " + resolver.name());
    }
    const std::size_t count = std::min(addresses->size(), kMaxMxAddresses);
    for (std::size_t i = 0; i < count; ++i) {
      route.targets.push_back(MxTarget{mx.preference, mx.host, (*addresses)[i]});
    }
  }
  if (!route.targets.empty()) {
    return route;
  }
  if (route.implicit) {
    return make_error(Errc::kPermanent, "the domain " + std::string(domain) +
                                            " has no MX record and no address (A/AAAA) at " +
                                            resolver.name() + ": it receives no mail");
  }
  return make_error(Errc::kTransient, "no MX host of the domain " + std::string(domain) +
                                          " has an address: " + joined(route.problems));
}

Result<std::unique_ptr<DirectSmtpLink>> DirectSmtpLink::open(DirectConfig config) {
  if (config.smtp.server.port == 0) {
    config.smtp.server.port = kDefaultMxPort;
  }
  config.smtp.server.host = "localhost";  // stands in for the MX hosts in the checks below
  config.smtp.server.user.clear();        // never AUTH at somebody else's MX
  config.smtp.server.password.clear();
  config.smtp.server.bearer.clear();
  SQLPOST_TRY(check_server(config.smtp.server));
  if (auto ok = check_mail_address(config.smtp.from_address); !ok) {
    return make_error(Errc::kConfig, "sender address: " + ok.error().message);
  }
  auto resolver = platform::open_resolver(config.dns);
  if (!resolver.ok()) {
    return make_error(Errc::kConfig, "direct send: " + resolver.error().message);
  }
  return std::make_unique<DirectSmtpLink>(std::move(config), std::move(resolver).value());
}

DirectSmtpLink::DirectSmtpLink(DirectConfig config, std::unique_ptr<platform::Resolver> resolver)
    : config_(std::move(config)), resolver_(std::move(resolver)) {}

SmtpConfig DirectSmtpLink::attempt_config(const MxTarget& target) const {
  SmtpConfig smtp = config_.smtp;
  smtp.server.host = target.host;
  return smtp;
}

Result<> DirectSmtpLink::send(std::string_view to_address, std::string_view mail) {
  SQLPOST_TRY(check_mail_address(to_address));
  const std::string domain = domain_of(to_address);
  if (const auto cached = open_.find(domain); cached != open_.end()) {
    auto sent = cached->second->send(to_address, mail);
    if (sent.ok() || sent.error().code == Errc::kPermanent ||
        sent.error().code == Errc::kInvalidArgument) {
      return sent;
    }
    open_.erase(cached);  // that MX failed now: look the domain up again
  }
  return send_by_route(domain, to_address, mail);
}

Result<> DirectSmtpLink::send_by_route(const std::string& domain, std::string_view to_address,
                                       std::string_view mail) {
  const std::string what = "direct send to " + std::string(to_address);
  auto route = find_mx_route(*resolver_, domain);
  if (!route.ok()) {
    return make_error(route.error().code, what + ": " + route.error().message);
  }
  std::vector<std::string> failures = route->problems;
  std::vector<Errc> codes;
  for (const MxTarget& target : route->targets) {
    const std::string name = "MX " + target_name(target, config_.smtp.server.port);
    auto link = SmtpLink::open(attempt_config(target), target.address);
    auto sent = link.ok() ? (*link)->send(to_address, mail) : Result<>(link.error());
    if (sent.ok()) {
      if (open_.size() >= kMaxOpenDomains) {
        open_.clear();
      }
      open_[domain] = std::move(link).value();
      return success();
    }
    if (sent.error().code == Errc::kPermanent || sent.error().code == Errc::kInvalidArgument) {
      std::string message = what;
      message.append(": ").append(name).append(": ").append(sent.error().message);
      return make_error(sent.error().code, std::move(message));
    }
    failures.push_back(name + ": " + sent.error().message);
    codes.push_back(sent.error().code);
  }
  return make_error(overall_code(codes),
                    what + ": no mail server of " + domain + " took the mail (" +
                        std::to_string(route->targets.size()) + " tried): " + joined(failures));
}

Result<std::vector<MailRef>> DirectSmtpLink::list() {
  return make_error(Errc::kUnsupported, "direct send only sends; it cannot list a mailbox");
}
Result<std::string> DirectSmtpLink::fetch(const MailRef& /*ref*/) {
  return make_error(Errc::kUnsupported, "direct send only sends; it cannot fetch mail");
}
Result<> DirectSmtpLink::remove(const MailRef& /*ref*/) {
  return make_error(Errc::kUnsupported, "direct send only sends; it cannot remove mail");
}

namespace {

std::string route_detail(const MxRoute& route, std::string_view domain) {
  std::string text = route.implicit ? "no MX for " + std::string(domain) + ", so the domain itself:"
                                    : "MX of " + std::string(domain) + " in order:";
  for (const MxTarget& target : route.targets) {
    text +=
        " " + std::to_string(target.preference) + " " + target.host + " (" + target.address + ")";
  }
  if (!route.problems.empty()) {
    text += "; left out: " + joined(route.problems);
  }
  return text;
}

}  // namespace

Result<std::vector<CheckStep>> check_direct(const DirectConfig& given, std::string_view domain) {
  DirectConfig config = given;
  if (config.smtp.server.port == 0) {
    config.smtp.server.port = kDefaultMxPort;
  }
  config.smtp.server.user.clear();
  config.smtp.server.password.clear();
  config.smtp.server.bearer.clear();
  auto resolver = platform::open_resolver(config.dns);
  if (!resolver.ok()) {
    return std::vector<CheckStep>{CheckStep{"MX", false, resolver.error().message}};
  }
  auto route = find_mx_route(**resolver, domain);
  if (!route.ok()) {
    return std::vector<CheckStep>{CheckStep{"MX", false, route.error().message}};
  }
  std::vector<CheckStep> steps{CheckStep{"MX", true, route_detail(*route, domain)}};
  for (std::size_t i = 0; i < route->targets.size(); ++i) {
    const MxTarget& target = route->targets[i];
    SmtpConfig smtp = config.smtp;
    smtp.server.host = target.host;
    SQLPOST_TRY_ASSIGN(auto attempt, check_smtp(smtp, target.address));
    const bool passed = !attempt.empty() && attempt.back().ok;
    if (passed || i + 1 == route->targets.size()) {
      steps.insert(steps.end(), attempt.begin(), attempt.end());
      break;
    }
    const CheckStep& failed = attempt.back();
    steps.push_back(CheckStep{"fallback", true,
                              "MX " + target_name(target, config.smtp.server.port) + " failed at " +
                                  failed.name + " (" + failed.detail + "); trying the next one"});
  }
  return steps;
}

}  // namespace sqlpost::transport
