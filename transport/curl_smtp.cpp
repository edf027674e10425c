#include "transport/curl_smtp.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <utility>

#include "transport/limits.h"

namespace sqlpost::transport {
namespace {

bool helo_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

// SMTP needs CRLF; a lone LF would let the server misread dot lines.
std::string to_crlf(std::string_view mail) {
  std::string out;
  out.reserve(mail.size() + mail.size() / 64);
  for (std::size_t i = 0; i < mail.size(); ++i) {
    if (mail[i] == '\n' && (i == 0 || mail[i - 1] != '\r')) {
      out.push_back('\r');
    }
    out.push_back(mail[i]);
  }
  return out;
}

// gethostname(), or "localhost" when it fails or is no usable EHLO name.
std::string machine_host_name() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) {
    return "localhost";
  }
  const std::string host(name.data());
  const bool usable = !host.empty() && std::all_of(host.begin(), host.end(), helo_char);
  return usable ? host : "localhost";
}

Error unsupported(const char* what) {
  return make_error(Errc::kUnsupported, std::string("an SMTP link only sends; it cannot ") + what);
}

}  // namespace

Result<std::unique_ptr<CurlSlist>> connect_to(const SmtpConfig& config,
                                              const std::string& connect_address) {
  if (connect_address.empty()) {
    return std::unique_ptr<CurlSlist>();
  }
  const bool ipv6 = connect_address.find(':') != std::string::npos;
  const std::uint16_t port = config.server.port != 0
                                 ? config.server.port
                                 : standard_port(MailProtocol::kSmtp, config.server.security);
  auto list = std::make_unique<CurlSlist>();
  SQLPOST_TRY(list->append(config.server.host + ":" + std::to_string(port) + ":" +
                           (ipv6 ? "[" + connect_address + "]" : connect_address)));
  return list;
}

Result<> check_mail_address(std::string_view address) {
  const bool printable = std::all_of(address.begin(), address.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != '"' && c != '\\';
  });
  if (address.empty() || address.size() > kMaxAddressBytes || !printable ||
      std::count(address.begin(), address.end(), '@') != 1 || address.front() == '@' ||
      address.back() == '@') {
    return make_error(Errc::kInvalidArgument, "'" +
                                                  std::string(address.substr(0, kMaxAddressBytes)) +
                                                  "' is not a usable e-mail address");
  }
  return success();
}

Result<std::unique_ptr<SmtpLink>> SmtpLink::open(SmtpConfig config,
                                                 const std::string& connect_address) {
  SQLPOST_TRY(check_server(config.server));
  if (config.helo_name.empty()) {
    config.helo_name = machine_host_name();
  }
  if (config.helo_name.size() > 253 ||
      !std::all_of(config.helo_name.begin(), config.helo_name.end(), helo_char)) {
    return make_error(Errc::kConfig, "EHLO name '" + config.helo_name + "' is not a host name");
  }
  if (auto ok = check_mail_address(config.from_address); !ok) {
    return make_error(Errc::kConfig, "sender address: " + ok.error().message);
  }
  SQLPOST_TRY_ASSIGN(auto easy, CurlEasy::create());
  apply_server(*easy, MailProtocol::kSmtp, config.server);
  SQLPOST_TRY_ASSIGN(auto resolve, connect_to(config, connect_address));
  easy->set(CURLOPT_RESOLVE, resolve ? resolve->get() : nullptr);
  const std::string url = server_url(MailProtocol::kSmtp, config.server) + "/" + config.helo_name;
  easy->set(CURLOPT_URL, url.c_str());
  const std::string from = "<" + config.from_address + ">";
  easy->set(CURLOPT_MAIL_FROM, from.c_str());
  return std::make_unique<SmtpLink>(std::move(config), std::move(easy), std::move(resolve));
}

SmtpLink::SmtpLink(SmtpConfig config, std::unique_ptr<CurlEasy> easy,
                   std::unique_ptr<CurlSlist> resolve)
    : config_(std::move(config)), resolve_(std::move(resolve)), easy_(std::move(easy)) {}

Result<> SmtpLink::send(std::string_view to_address, std::string_view mail) {
  SQLPOST_TRY(check_mail_address(to_address));
  if (mail.empty() || mail.size() > kMaxMailBytes) {
    return make_error(Errc::kInvalidArgument, "a mail must have 1.." +
                                                  std::to_string(kMaxMailBytes) + " bytes, not " +
                                                  std::to_string(mail.size()));
  }
  const std::string wire = to_crlf(mail);
  CurlSlist recipients;
  SQLPOST_TRY(recipients.append("<" + std::string(to_address) + ">"));
  easy_->set(CURLOPT_MAIL_RCPT, recipients.get());
  easy_->set_upload(wire);
  const CURLcode rc = easy_->perform();
  easy_->set(CURLOPT_MAIL_RCPT, static_cast<curl_slist*>(nullptr));
  easy_->clear_upload();
  if (rc != CURLE_OK) {
    return mail_error(*easy_, rc,
                      "SMTP send to " + std::string(to_address) + " via " +
                          server_name(MailProtocol::kSmtp, config_.server));
  }
  return success();
}

Result<std::string> SmtpLink::etrn(std::string_view domain) {
  if (domain.empty() || domain.size() > 253 ||
      !std::all_of(domain.begin(), domain.end(), helo_char)) {
    return make_error(Errc::kInvalidArgument,
                      "ETRN domain '" + std::string(domain.substr(0, 253)) + "' is not a domain");
  }
  const std::string command = "ETRN " + std::string(domain);
  easy_->set(CURLOPT_CUSTOMREQUEST, command.c_str());
  easy_->set(CURLOPT_NOBODY, 1L);
  const CURLcode rc = easy_->perform();
  easy_->set(CURLOPT_CUSTOMREQUEST, static_cast<const char*>(nullptr));
  easy_->set(CURLOPT_NOBODY, 0L);
  if (rc != CURLE_OK) {
    return mail_error(*easy_, rc,
                      "SMTP ETRN " + std::string(domain) + " at " +
                          server_name(MailProtocol::kSmtp, config_.server));
  }
  const std::string reply = easy_->failure_reply_line(easy_->response_code());
  return reply.empty() ? std::to_string(easy_->response_code()) : reply;
}

Result<std::vector<MailRef>> SmtpLink::list() { return unsupported("list a mailbox"); }
Result<std::string> SmtpLink::fetch(const MailRef& /*ref*/) { return unsupported("fetch mail"); }
Result<> SmtpLink::remove(const MailRef& /*ref*/) { return unsupported("remove mail"); }

}  // namespace sqlpost::transport
