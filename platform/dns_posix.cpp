// platform/dns.h on POSIX: glibc's libresolv. res_nquery() sends the query (retries,
// TCP fallback on truncation) and says in res_h_errno why there is no answer;
// ns_initparse()/ns_parserr()/ns_name_uncompress() check and parse the packet.
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <optional>
#include <type_traits>

#include "platform/dns.h"

namespace sqlpost::platform {
namespace {

// `struct __res_state`: the plain name is also a function of <resolv.h>.
using StateData = std::remove_pointer_t<res_state>;

// The one owner of a resolver state (res_ninit ... res_nclose).
class ResState {
 public:
  ResState() : state_(std::make_unique<StateData>()) {}
  ResState(const ResState&) = delete;
  ResState& operator=(const ResState&) = delete;
  ResState(ResState&&) = delete;
  ResState& operator=(ResState&&) = delete;
  ~ResState() {
    if (initialised_) {
      res_nclose(state_.get());
    }
  }

  // false when res_ninit failed (no usable resolver configuration).
  bool init() {
    initialised_ = res_ninit(state_.get()) == 0;
    return initialised_;
  }
  [[nodiscard]] res_state get() const { return state_.get(); }

 private:
  std::unique_ptr<StateData> state_;
  bool initialised_ = false;
};

// Answers are read into a buffer of the largest DNS message: never truncated by us.
constexpr std::size_t kAnswerBytes = 65536;

class LibresolvResolver final : public Resolver {
 public:
  explicit LibresolvResolver(std::string name) : name_(std::move(name)) {}
  ResState& state() { return state_; }

  Result<std::vector<MxRecord>> mx(std::string_view domain) override;
  Result<std::vector<std::string>> addresses(std::string_view host) override;
  [[nodiscard]] std::string name() const override { return name_; }

 private:
  using Visit = std::function<void(const ns_msg&, const ns_rr&)>;
  // Runs one query and calls `visit` for each answer record of `type` (at most
  // kMaxDnsRecords). false: the name exists without such records (NODATA).
  Result<bool> query(std::string_view name, ns_type type, const Visit& visit);
  Error no_answer(std::string_view name, const char* type) const;

  ResState state_;
  std::string name_;
  std::vector<unsigned char> answer_ = std::vector<unsigned char>(kAnswerBytes);
};

Error LibresolvResolver::no_answer(std::string_view name, const char* type) const {
  const std::string what =
      std::string("DNS ") + type + " lookup of " + std::string(name) + " at " + name_;
  switch (state_.get()->res_h_errno) {
    case HOST_NOT_FOUND:
      return make_error(Errc::kNotFound, what + ": the name does not exist (NXDOMAIN)");
    case TRY_AGAIN:
      return make_error(Errc::kTransient,
                        what + ": no answer (timed out, or the server failed or refused)");
    case NO_RECOVERY:
      return make_error(Errc::kTransient, what + ": the server answered with an error");
    default: return make_error(Errc::kTransient, what + ": failed");
  }
}

Result<bool> LibresolvResolver::query(std::string_view name, ns_type type, const Visit& visit) {
  const char* type_name = type == ns_t_mx ? "MX" : (type == ns_t_a ? "A" : "AAAA");
  if (!is_dns_name(name)) {
    return make_error(Errc::kInvalidArgument, "'" + std::string(name.substr(0, kMaxDnsNameBytes)) +
                                                  "' is not a domain name");
  }
  const std::string text(name);
  const int length = res_nquery(state_.get(), text.c_str(), ns_c_in, type, answer_.data(),
                                static_cast<int>(answer_.size()));
  if (length < 0) {
    if (state_.get()->res_h_errno == NO_DATA) {
      return false;
    }
    return no_answer(name, type_name);
  }
  ns_msg message{};
  if (static_cast<std::size_t>(length) > answer_.size() ||
      ns_initparse(answer_.data(), length, &message) != 0) {
    return make_error(Errc::kTransient, std::string("DNS ") + type_name + " answer for " + text +
                                            " from " + name_ + " is malformed");
  }
  const int count = std::min<int>(ns_msg_count(message, ns_s_an), kMaxDnsRecords);
  for (int i = 0; i < count; ++i) {
    ns_rr record{};
    if (ns_parserr(&message, ns_s_an, i, &record) != 0) {
      break;  // the rest of a damaged answer is not read
    }
    if (ns_rr_type(record) == type && ns_rr_class(record) == ns_c_in) {
      visit(message, record);
    }
  }
  return true;
}

Result<std::vector<MxRecord>> LibresolvResolver::mx(std::string_view domain) {
  std::vector<MxRecord> records;
  const auto visit = [&records](const ns_msg& message, const ns_rr& record) {
    if (ns_rr_rdlen(record) < 3) {
      return;
    }
    std::array<char, NS_MAXDNAME> host{};
    if (ns_name_uncompress(ns_msg_base(message), ns_msg_end(message), ns_rr_rdata(record) + 2,
                           host.data(), host.size()) < 0) {
      return;
    }
    std::string name(host.data(), strnlen(host.data(), host.size()));
    if (name == ".") {
      name.clear();  // null MX
    } else if (!is_dns_name(name)) {
      return;
    }
    const auto preference = static_cast<std::uint16_t>(ns_get16(ns_rr_rdata(record)));
    records.push_back(MxRecord{preference, std::move(name)});
  };
  SQLPOST_TRY(query(domain, ns_t_mx, visit));
  std::stable_sort(records.begin(), records.end(), [](const MxRecord& a, const MxRecord& b) {
    return a.preference < b.preference;
  });
  return records;
}

Result<std::vector<std::string>> LibresolvResolver::addresses(std::string_view host) {
  std::vector<std::string> found;
  std::optional<Error> failure;
  for (const ns_type type : {ns_t_a, ns_t_aaaa}) {
    const int family = type == ns_t_a ? AF_INET : AF_INET6;
    const std::size_t size = type == ns_t_a ? 4 : 16;
    const auto visit = [&found, family, size](const ns_msg& /*message*/, const ns_rr& record) {
      std::array<char, INET6_ADDRSTRLEN> text{};
      if (ns_rr_rdlen(record) == size &&
          inet_ntop(family, ns_rr_rdata(record), text.data(), text.size()) != nullptr) {
        found.emplace_back(text.data());
      }
    };
    auto answered = query(host, type, visit);
    if (!answered.ok() && !failure) {
      failure = answered.take_error();
    }
  }
  if (found.empty() && failure) {
    return std::move(*failure);  // an AAAA failure does not hide A records, nor the reverse
  }
  return found;
}

}  // namespace

Result<std::unique_ptr<Resolver>> open_resolver(const DnsServer& server) {
  const std::string name = server.address.empty()
                               ? std::string("the system resolver")
                               : server.address + ":" + std::to_string(server.port);
  auto resolver = std::make_unique<LibresolvResolver>(name);
  if (!resolver->state().init()) {
    return make_error(Errc::kConfig, "cannot set up the DNS resolver (res_ninit failed)");
  }
  res_state state = resolver->state().get();
  if (!server.address.empty()) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server.port);
    if (inet_pton(AF_INET, server.address.c_str(), &address.sin_addr) != 1) {
      return make_error(Errc::kConfig,
                        "DNS server '" + server.address + "' is not an IPv4 address");
    }
    state->nscount = 1;
    state->nsaddr_list[0] = address;
  }
  const long seconds = std::max<long>(1, static_cast<long>(server.timeout.count() / 3000));
  state->retrans = static_cast<int>(seconds);
  state->retry = 2;
  return std::unique_ptr<Resolver>(std::move(resolver));
}

}  // namespace sqlpost::platform
