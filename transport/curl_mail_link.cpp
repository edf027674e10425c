#include "transport/mail_links.h"

#include <utility>

namespace sqlpost::transport {

Result<std::unique_ptr<Link>> open_outgoing_link(MailLinkConfig config) {
  if (config.direct) {
    SQLPOST_TRY_ASSIGN(auto direct, DirectSmtpLink::open(DirectConfig{std::move(config.smtp),
                                                                      std::move(config.dns)}));
    return std::unique_ptr<Link>(std::move(direct));
  }
  SQLPOST_TRY_ASSIGN(auto relay, SmtpLink::open(std::move(config.smtp)));
  return std::unique_ptr<Link>(std::move(relay));
}

Result<std::unique_ptr<MailLink>> MailLink::open(MailLinkConfig config) {
  SQLPOST_TRY_ASSIGN(auto smtp, open_outgoing_link(config));
  if (config.inbox == InboxProtocol::kImap) {
    SQLPOST_TRY_ASSIGN(auto imap, ImapLink::open(ImapConfig{std::move(config.inbox_server),
                                                            std::move(config.imap_mailbox)}));
    return std::make_unique<MailLink>(std::move(smtp), nullptr, std::move(imap));
  }
  SQLPOST_TRY_ASSIGN(auto pop3, Pop3Link::open(std::move(config.inbox_server)));
  return std::make_unique<MailLink>(std::move(smtp), std::move(pop3), nullptr);
}

MailLink::MailLink(std::unique_ptr<Link> outgoing, std::unique_ptr<Pop3Link> pop3,
                   std::unique_ptr<ImapLink> imap)
    : outgoing_(std::move(outgoing)), pop3_(std::move(pop3)), imap_(std::move(imap)) {}

Link& MailLink::inbox() const {
  if (pop3_) {
    return *pop3_;
  }
  return *imap_;
}

Result<> MailLink::send(std::string_view to_address, std::string_view mail) {
  return outgoing_->send(to_address, mail);
}

Result<std::vector<MailRef>> MailLink::list() { return inbox().list(); }

Result<std::string> MailLink::fetch(const MailRef& ref) { return inbox().fetch(ref); }
Result<std::string> MailLink::fetch_head(const MailRef& ref, std::size_t max_bytes) {
  return inbox().fetch_head(ref, max_bytes);
}

Result<> MailLink::remove(const MailRef& ref) { return inbox().remove(ref); }

Result<> MailLink::close() { return pop3_ ? pop3_->close() : success(); }

}  // namespace sqlpost::transport
