// sqlpost/agent/check.h — `sqlpost check`: walks the mail connection step by step.
//
// Contract: check_mail_settings() tries the SMTP server, then the POP3/IMAP mailbox
// with the site's settings (transport/curl_check.h) — with smtp.mode=direct, the MX
// lookup and SMTP conversation for each partner domain instead — printing one line per step
// ("ok   smtp: connect ...", "FAIL pop3: login ...") to `out`, and says what to try
// next when a step fails. With pop_before_smtp the mailbox comes first (its login is
// what lets the SMTP server take mail), then "ok   smtp: POP-before-SMTP", then the
// SMTP steps; a failed mailbox login skips SMTP. Returns true when every step passed. Nothing is
// sent, fetched or deleted; no password is printed.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "transport/mail_links.h"

namespace sqlpost {

// direct_domains: with config.direct, the partner domains whose MX route is checked
// (transport::check_direct) instead of a relay.
Result<bool> check_mail_settings(const transport::MailLinkConfig& config,
                                 const std::vector<std::string>& direct_domains, std::ostream& out);

}  // namespace sqlpost
