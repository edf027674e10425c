#include "agent/check.h"

#include <string>
#include <vector>

namespace sqlpost {
namespace {

using transport::CheckStep;

std::string advice_for(const std::string& step, const std::string& detail, bool bearer) {
  if (detail.rfind("login delay", 0) == 0) {
    return "wait for the delay to pass, and run less often (the server's LOGIN-DELAY)";
  }
  if (detail.rfind("the mailbox is in use", 0) == 0) {
    return "stop the other program reading this mailbox, or give sqlpost a mailbox of its own";
  }
  if (detail.rfind("the server offers ", 0) == 0) {
    return "set smtp.auth, pop3.auth or imap.auth to a mechanism the server offers, or unset it "
           "(sqlpost config DB KEY= unsets it)";
  }
  if (step == "login" && bearer) {
    return "check that the token command gets a token for this user with the mail scopes "
           "(IMAP/POP/SMTP), and the server's OAuth2 set-up (docs/operations.md, OAuth2)";
  }
  if (step == "connect") {
    return "check the host name and port, and that a firewall lets the connection through";
  }
  if (step == "TLS" || step == "STARTTLS") {
    return "check the security setting (starttls, tls or none), the port, and tls.ca_file if the "
           "server uses a private certificate authority";
  }
  if (step == "greeting") {
    return "the server did not greet like a mail server: is this the right port?";
  }
  if (step == "login") {
    return "check the user name and password (sqlpost config DB --secret KEY.password)";
  }
  if (step == "MX") {
    return "check the partner's address, smtp.dns_server, and that the domain publishes MX "
           "records (or an address); a site without reachable MX can send through a relay "
           "(smtp.mode=relay, smtp.host)";
  }
  if (step == "mailbox") {
    return "the login worked but the mailbox cannot be opened (imap.mailbox?)";
  }
  return "see the message above";
}

bool print_steps(const char* protocol, const std::vector<CheckStep>& steps, std::ostream& out,
                 bool bearer = false) {
  bool all_ok = true;
  for (const auto& step : steps) {
    out << (step.ok ? "ok   " : "FAIL ") << protocol << ": " << step.name;
    if (!step.detail.empty()) {
      out << " - " << step.detail;
    }
    out << "\n";
    if (!step.ok) {
      out << "     what to try: " << advice_for(step.name, step.detail, bearer) << "\n";
      all_ok = false;
    }
  }
  return all_ok;
}

// The token itself is never shown.
void print_token(const char* protocol, const transport::MailServer& server, std::ostream& out) {
  if (!server.bearer.empty()) {
    out << "ok   " << protocol << ": token - got an OAuth2 access token from "
        << server.bearer_source << " (not shown)\n";
  }
}

// smtp.mode=direct: the MX route and SMTP conversation of each partner domain.
Result<bool> check_direct_send(const transport::MailLinkConfig& config,
                               const std::vector<std::string>& domains, std::ostream& out) {
  const transport::DirectConfig direct{config.smtp, config.dns};
  const std::uint16_t port =
      config.smtp.server.port != 0 ? config.smtp.server.port : transport::kDefaultMxPort;
  out << "ok   smtp: mode - direct: each mail goes to its recipient domain's MX servers, port "
      << port << ", DNS "
      << (config.dns.address.empty() ? std::string("of the system")
                                     : config.dns.address + ":" + std::to_string(config.dns.port))
      << "\n";
  if (domains.empty()) {
    out << "ok   smtp: MX - no partner yet: no domain to look up\n";
    return true;
  }
  bool all_ok = true;
  for (const auto& domain : domains) {
    SQLPOST_TRY_ASSIGN(const auto steps, transport::check_direct(direct, domain));
    const std::string label = "smtp " + domain;
    all_ok = print_steps(label.c_str(), steps, out) && all_ok;
  }
  return all_ok;
}

Result<bool> check_smtp_side(const transport::MailLinkConfig& config,
                             const std::vector<std::string>& domains, std::ostream& out) {
  if (config.direct) {
    return check_direct_send(config, domains, out);
  }
  print_token("smtp", config.smtp.server, out);
  SQLPOST_TRY_ASSIGN(const auto smtp_steps, transport::check_smtp(config.smtp));
  return print_steps("smtp", smtp_steps, out, !config.smtp.server.bearer.empty());
}

// The mailbox's steps (POP3 or IMAP); the login among them.
Result<bool> check_inbox(const transport::MailLinkConfig& config, std::ostream& out) {
  const bool bearer = !config.inbox_server.bearer.empty();
  if (config.inbox == transport::InboxProtocol::kImap) {
    print_token("imap", config.inbox_server, out);
    SQLPOST_TRY_ASSIGN(const auto imap_steps,
                       transport::check_imap({config.inbox_server, config.imap_mailbox}));
    return print_steps("imap", imap_steps, out, bearer);
  }
  print_token("pop3", config.inbox_server, out);
  SQLPOST_TRY_ASSIGN(const auto pop3_steps, transport::check_pop3(config.inbox_server));
  return print_steps("pop3", pop3_steps, out, bearer);
}

}  // namespace

Result<bool> check_mail_settings(const transport::MailLinkConfig& config,
                                 const std::vector<std::string>& direct_domains,
                                 std::ostream& out) {
  if (config.pop_before_smtp) {
    // POP-before-SMTP: the mailbox login comes first, as in every run that sends.
    SQLPOST_TRY_ASSIGN(const bool inbox_ok, check_inbox(config, out));
    if (!inbox_ok) {
      out << "FAIL smtp: POP-before-SMTP - not tried: the mailbox login above failed, and the "
             "SMTP server takes mail only after it (smtp.pop_before_smtp=yes)\n";
      return false;
    }
    out << "ok   smtp: POP-before-SMTP - logged into the mailbox above first\n";
    return check_smtp_side(config, direct_domains, out);
  }
  SQLPOST_TRY_ASSIGN(const bool smtp_ok, check_smtp_side(config, direct_domains, out));
  SQLPOST_TRY_ASSIGN(const bool inbox_ok, check_inbox(config, out));
  return inbox_ok && smtp_ok;
}

}  // namespace sqlpost
