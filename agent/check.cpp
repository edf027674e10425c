#include "agent/check.h"

#include <string>
#include <vector>

namespace sqlpost {
namespace {

using transport::CheckStep;

std::string advice_for(const std::string& step) {
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
  if (step == "mailbox") {
    return "the login worked but the mailbox cannot be opened (imap.mailbox?)";
  }
  return "see the message above";
}

bool print_steps(const char* protocol, const std::vector<CheckStep>& steps, std::ostream& out) {
  bool all_ok = true;
  for (const auto& step : steps) {
    out << (step.ok ? "ok   " : "FAIL ") << protocol << ": " << step.name;
    if (!step.detail.empty()) {
      out << " - " << step.detail;
    }
    out << "\n";
    if (!step.ok) {
      out << "     what to try: " << advice_for(step.name) << "\n";
      all_ok = false;
    }
  }
  return all_ok;
}

}  // namespace

Result<bool> check_mail_settings(const transport::MailLinkConfig& config, std::ostream& out) {
  SQLPOST_TRY_ASSIGN(const auto smtp_steps, transport::check_smtp(config.smtp));
  const bool smtp_ok = print_steps("smtp", smtp_steps, out);
  if (config.inbox == transport::InboxProtocol::kImap) {
    SQLPOST_TRY_ASSIGN(const auto imap_steps,
                       transport::check_imap({config.inbox_server, config.imap_mailbox}));
    return print_steps("imap", imap_steps, out) && smtp_ok;
  }
  SQLPOST_TRY_ASSIGN(const auto pop3_steps, transport::check_pop3(config.inbox_server));
  return print_steps("pop3", pop3_steps, out) && smtp_ok;
}

}  // namespace sqlpost
