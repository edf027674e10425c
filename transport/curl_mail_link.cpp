#include "transport/mail_links.h"

#include <utility>

namespace sqlpost::transport {

namespace {

// The relay or direct link alone.
Result<std::unique_ptr<Link>> open_sender(MailLinkConfig config) {
  if (config.direct) {
    SQLPOST_TRY_ASSIGN(auto direct, DirectSmtpLink::open(DirectConfig{std::move(config.smtp),
                                                                      std::move(config.dns)}));
    return std::unique_ptr<Link>(std::move(direct));
  }
  SQLPOST_TRY_ASSIGN(auto relay, SmtpLink::open(std::move(config.smtp)));
  return std::unique_ptr<Link>(std::move(relay));
}

std::unique_ptr<PopBeforeSmtpLink> gated(std::unique_ptr<Link> sender, MailLinkConfig config) {
  return std::make_unique<PopBeforeSmtpLink>(
      std::move(sender), [login = std::move(config)] { return mailbox_login(login); });
}

}  // namespace

Result<> mailbox_login(const MailLinkConfig& config) {
  const bool imap = config.inbox == InboxProtocol::kImap;
  const MailProtocol protocol = imap ? MailProtocol::kImap : MailProtocol::kPop3;
  SQLPOST_TRY(check_server(config.inbox_server));
  SQLPOST_TRY_ASSIGN(auto easy, CurlEasy::create());
  apply_server(*easy, protocol, config.inbox_server);
  const std::string url = server_url(protocol, config.inbox_server) + "/";
  easy->set(CURLOPT_URL, url.c_str());
  easy->set(CURLOPT_CUSTOMREQUEST, "NOOP");
  easy->set(CURLOPT_NOBODY, 1L);
  easy->set(CURLOPT_FORBID_REUSE, 1L);  // QUIT/LOGOUT right after the NOOP
  const CURLcode rc = easy->perform();
  if (rc != CURLE_OK) {
    return mail_error(*easy, rc,
                      std::string(protocol_name(protocol)) + " login at " +
                          server_name(protocol, config.inbox_server));
  }
  return success();
}

PopBeforeSmtpLink::PopBeforeSmtpLink(std::unique_ptr<Link> outgoing, Login login)
    : outgoing_(std::move(outgoing)), login_(std::move(login)) {}

Result<> PopBeforeSmtpLink::log_in() {
  if (state_ == State::kNotYet) {
    auto done = login_();
    if (done.ok()) {
      state_ = State::kLoggedIn;
    } else {
      state_ = State::kFailed;
      failure_ = make_error(done.error().code,
                            "POP-before-SMTP (smtp.pop_before_smtp=yes): the mailbox login "
                            "failed, so nothing was sent: " +
                                done.error().message);
    }
  }
  if (state_ == State::kFailed) {
    return failure_;
  }
  return success();
}

Result<> PopBeforeSmtpLink::send(std::string_view to_address, std::string_view mail) {
  SQLPOST_TRY(log_in());
  return outgoing_->send(to_address, mail);
}

Result<std::unique_ptr<Link>> open_outgoing_link(MailLinkConfig config) {
  SQLPOST_TRY_ASSIGN(auto sender, open_sender(config));
  if (config.pop_before_smtp) {
    return std::unique_ptr<Link>(gated(std::move(sender), std::move(config)));
  }
  return sender;
}

Result<std::unique_ptr<MailLink>> MailLink::open(MailLinkConfig config) {
  SQLPOST_TRY_ASSIGN(auto sender, open_sender(config));
  PopBeforeSmtpLink* gate = nullptr;
  if (config.pop_before_smtp) {
    auto wrapped = gated(std::move(sender), config);
    gate = wrapped.get();
    sender = std::move(wrapped);
  }
  if (config.inbox == InboxProtocol::kImap) {
    SQLPOST_TRY_ASSIGN(auto imap, ImapLink::open(ImapConfig{std::move(config.inbox_server),
                                                            std::move(config.imap_mailbox)}));
    return std::make_unique<MailLink>(std::move(sender), nullptr, std::move(imap), gate);
  }
  SQLPOST_TRY_ASSIGN(auto pop3, Pop3Link::open(std::move(config.inbox_server)));
  return std::make_unique<MailLink>(std::move(sender), std::move(pop3), nullptr, gate);
}

MailLink::MailLink(std::unique_ptr<Link> outgoing, std::unique_ptr<Pop3Link> pop3,
                   std::unique_ptr<ImapLink> imap, PopBeforeSmtpLink* gate)
    : outgoing_(std::move(outgoing)), pop3_(std::move(pop3)), imap_(std::move(imap)), gate_(gate) {}

Link& MailLink::inbox() const {
  if (pop3_) {
    return *pop3_;
  }
  return *imap_;
}

Result<> MailLink::send(std::string_view to_address, std::string_view mail) {
  return outgoing_->send(to_address, mail);
}

Result<std::vector<MailRef>> MailLink::list() {
  auto refs = inbox().list();
  if (refs.ok() && gate_ != nullptr) {
    gate_->logged_in();  // this run has logged into the mailbox: enough for POP-before-SMTP
  }
  return refs;
}

Result<std::string> MailLink::fetch(const MailRef& ref) { return inbox().fetch(ref); }
Result<std::string> MailLink::fetch_head(const MailRef& ref, std::size_t max_bytes) {
  return inbox().fetch_head(ref, max_bytes);
}

Result<> MailLink::remove(const MailRef& ref) { return inbox().remove(ref); }

Result<> MailLink::close() { return pop3_ ? pop3_->close() : success(); }

}  // namespace sqlpost::transport
