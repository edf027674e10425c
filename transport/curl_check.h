// sqlpost/transport/curl_check.h — step-by-step connection checks for `sqlpost check`.
//
// Contract: check_smtp/check_pop3/check_imap make one connection with the link's
// settings and report, in plain words, each step in order until the first failure:
//   "connect" (DNS and TCP), "TLS" (implicit TLS only: handshake and certificate),
//   "greeting" (the server's banner), "STARTTLS" (kStartTls only), "TLS" (after
//   STARTTLS: handshake and certificate), "login" (AUTH/USER; only with a user, and
//   failed when the server never asked for it: credentials set but no AUTH offered),
//   then "ready" (SMTP: NOOP answered), "mailbox" (POP3: STAT; IMAP: the mailbox
//   could be selected). Every returned step but the last has ok=true; the last one
//   has ok=false when that step failed. Nothing is sent, fetched or deleted. The
//   password never appears. The Result fails only for unusable settings (kConfig)
//   or when libcurl cannot be initialised (kInternal).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "transport/curl_imap.h"
#include "transport/curl_server.h"
#include "transport/curl_smtp.h"

namespace sqlpost::transport {

struct CheckStep {
  std::string name;  // "connect", "TLS", "greeting", "STARTTLS", "login", "ready", "mailbox"
  bool ok = false;
  std::string detail;  // what happened, in plain words
};

// connect_address: see connect_to() (curl_smtp.h); empty: server.host is resolved.
Result<std::vector<CheckStep>> check_smtp(const SmtpConfig& config,
                                          const std::string& connect_address = {});
Result<std::vector<CheckStep>> check_pop3(const MailServer& server);
Result<std::vector<CheckStep>> check_imap(const ImapConfig& config);

}  // namespace sqlpost::transport
