// sqlpost/transport/dsn.h — delivery status notifications (RFC 3464) about our mail.
//
// Contract: parse_bounce() reads a mail that may be a bounce: a multipart/report
// whose parts include message/delivery-status and the returned original
// (message/rfc822 or text/rfc822-headers). It returns nullopt for anything else
// (the mail stays foreign), and a Bounce only when the returned original carries
// sqlpost's X-Sqlpost headers. The text is hostile: every size is bounded by the
// MIME parser's limits, nothing is trusted beyond being parsed; whether the bounce
// is about a part this site really sent is the caller's decision (the original's
// Message-ID must be the one it sent that part with).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "transport/codec.h"

namespace sqlpost::transport {

struct Bounce {
  PartHeader original;     // the returned part's X-Sqlpost headers
  std::string message_id;  // the returned part's Message-ID
  std::string action;      // "failed", "delayed", ... (lower case)
  std::string status;      // e.g. "5.3.4"
  std::string diagnostic;  // the remote server's reply, e.g. "smtp; 552 5.3.4 too big"
  std::string recipient;   // Final-Recipient, e.g. "rfc822; r1@r1.test"

  [[nodiscard]] bool permanent() const { return action == "failed" || status.starts_with("5"); }
  // The refusal is about the size of the mail (RFC 3463 X.3.4 / X.2.3, or SMTP 552).
  [[nodiscard]] bool size_refusal() const;
};

std::optional<Bounce> parse_bounce(std::string_view mail);

// The Message-ID of a mail as written (with its angle brackets); "" when absent.
std::string message_id_of(std::string_view mail);

}  // namespace sqlpost::transport
