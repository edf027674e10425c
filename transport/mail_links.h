// sqlpost/transport/mail_links.h — one Link for a site's real mail account: SMTP out,
// POP3 or IMAP in (libcurl; the parts are in curl_smtp.h, curl_pop3.h, curl_imap.h).
//
// Contract: MailLink::send() goes through the SmtpLink (the relay) or, with
// direct=true, the DirectSmtpLink (curl_direct.h: the recipient domain's MX, looked
// up through `dns`); list/fetch/remove through the
// Pop3Link or ImapLink chosen by `inbox`, with their exact semantics — in particular
// POP3 deletions take effect only when the POP3 session ends (close(), the next
// list(), or destruction); IMAP removals are immediate. close() ends the inbox
// session (commits POP3 deletions) and keeps the link usable. Errors as in
// curl_server.h. Also re-exports the check helpers (curl_check.h).
//
// POP-before-SMTP (pop_before_smtp=true; some providers let an address send only
// after it has logged into its mailbox): the sending half is a PopBeforeSmtpLink,
// whose first send() first logs into the mailbox with mailbox_login() — a login and
// nothing else: no mail is listed or fetched — and connects to SMTP only after that
// succeeded. A MailLink whose mailbox was already read (a successful list()) in this
// run does not log in again. A failed login fails every send() of that link with
// its error ("POP-before-SMTP: ..."), and nothing is sent.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_check.h"
#include "transport/curl_direct.h"
#include "transport/curl_imap.h"
#include "transport/curl_pop3.h"
#include "transport/curl_server.h"
#include "transport/curl_smtp.h"
#include "transport/link.h"

namespace sqlpost::transport {

enum class InboxProtocol { kPop3, kImap };

struct MailLinkConfig {
  SmtpConfig smtp;
  bool direct = false;      // smtp.mode=direct: to each recipient's MX, not smtp.server
  platform::DnsServer dns;  // direct: the resolver (empty address: the system's)
  InboxProtocol inbox = InboxProtocol::kPop3;
  MailServer inbox_server;
  std::string imap_mailbox = "INBOX";
  bool pop_before_smtp = false;  // log into the mailbox before connecting to SMTP
};

// One login to the mailbox of `config` (POP3 USER/PASS or AUTH, NOOP, QUIT; IMAP
// LOGIN or AUTHENTICATE, NOOP, LOGOUT), nothing listed or fetched. Errors as in
// curl_server.h.
Result<> mailbox_login(const MailLinkConfig& config);

// Sends through `outgoing` after a successful `login` (see above). list/fetch/remove
// go to `outgoing` unchanged.
class PopBeforeSmtpLink final : public Link {
 public:
  using Login = std::function<Result<>()>;
  PopBeforeSmtpLink(std::unique_ptr<Link> outgoing, Login login);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override { return outgoing_->list(); }
  Result<std::string> fetch(const MailRef& ref) override { return outgoing_->fetch(ref); }
  Result<> remove(const MailRef& ref) override { return outgoing_->remove(ref); }
  Result<> flush() override { return outgoing_->flush(); }
  // Logs in unless that happened already; the error of a failed login is kept.
  Result<> log_in();
  // The mailbox was logged into by other means (the receive half of the run).
  void logged_in() { state_ = State::kLoggedIn; }

 private:
  enum class State { kNotYet, kLoggedIn, kFailed };
  std::unique_ptr<Link> outgoing_;
  Login login_;
  State state_ = State::kNotYet;
  Error failure_{Errc::kInternal, {}};
};

// The sending half alone (alert mail): an SmtpLink, or a DirectSmtpLink with direct.
// kConfig for unusable settings; nothing is contacted yet.
Result<std::unique_ptr<Link>> open_outgoing_link(MailLinkConfig config);

class MailLink final : public Link {
 public:
  // kConfig for unusable settings; nothing is contacted yet.
  static Result<std::unique_ptr<MailLink>> open(MailLinkConfig config);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  Result<std::string> fetch_head(const MailRef& ref, std::size_t max_bytes) override;
  Result<> remove(const MailRef& ref) override;
  Result<> flush() override { return outgoing_->flush(); }
  // Ends the inbox session: commits POP3 deletions (see Pop3Link::close()).
  Result<> close();
  Result<> finish() override { return close(); }

  // `gate`: the PopBeforeSmtpLink inside `outgoing`, or null. Use open().
  MailLink(std::unique_ptr<Link> outgoing, std::unique_ptr<Pop3Link> pop3,
           std::unique_ptr<ImapLink> imap, PopBeforeSmtpLink* gate = nullptr);

 private:
  [[nodiscard]] Link& inbox() const;

  std::unique_ptr<Link> outgoing_;  // SmtpLink or DirectSmtpLink
  std::unique_ptr<Pop3Link> pop3_;  // exactly one of pop3_ and imap_ is set
  std::unique_ptr<ImapLink> imap_;
  PopBeforeSmtpLink* gate_ = nullptr;  // owned by outgoing_; told of a successful list()
};

}  // namespace sqlpost::transport
