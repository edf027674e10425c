// sqlpost/transport/curl_smtp.h — sending mail through an SMTP server with libcurl.
//
// Contract: SmtpLink::send() submits one complete RFC 5322 mail (as made by
// encode_message) to one recipient: MAIL FROM:<from_address> SIZE=<bytes>, RCPT
// TO:<to>, DATA. Bare LF line ends are sent as CRLF (SMTP requires CRLF); libcurl
// dot-stuffs. One libcurl handle serves every send() of the object, so the
// connection, TLS session and AUTH are reused. The EHLO name is helo_name (the URL
// path; empty: the machine's host name, or "localhost" if it is not a usable name). Security as in
// curl_server.h; the default STARTTLS never downgrades. Errors: kInvalidArgument (bad address, mail
// over kMaxMailBytes), kConfig (bad settings, wrong password, untrusted certificate, no STARTTLS),
// kPermanent (5xx, e.g. 550 unknown user, 552 too big — with the server's reply),
// kTransient (4xx, connection failure, timeout). A 250 reply means the server took
// responsibility for the mail. list/fetch/remove: kUnsupported (send-only link).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_handle.h"
#include "transport/curl_server.h"
#include "transport/link.h"

namespace sqlpost::transport {

struct SmtpConfig {
  MailServer server;         // port 0: 587 (kStartTls), 465 (kTls), 25 (kNone)
  std::string from_address;  // envelope sender (MAIL FROM)
  std::string helo_name;     // EHLO name: [A-Za-z0-9.-]; empty: the machine's host name
};

// kInvalidArgument unless 1..kMaxAddressBytes printable ASCII with one '@', no
// spaces, '<', '>', quotes or backslashes.
Result<> check_mail_address(std::string_view address);

// The CURLOPT_RESOLVE entry "host:port:address" that sends a connection to
// `connect_address` instead of what server.host resolves to (direct send has looked
// the MX up already; TLS still checks the certificate against server.host); null when
// connect_address is empty. kInternal when out of memory.
Result<std::unique_ptr<CurlSlist>> connect_to(const SmtpConfig& config,
                                              const std::string& connect_address);

class SmtpLink final : public Link {
 public:
  // kConfig for unusable settings; nothing is contacted yet. connect_address: see
  // connect_to().
  static Result<std::unique_ptr<SmtpLink>> open(SmtpConfig config,
                                                const std::string& connect_address = {});

  Result<> send(std::string_view to_address, std::string_view mail) override;
  // ETRN DOMAIN (RFC 1985): asks the server to start delivering the mail it queued
  // for DOMAIN (a site that is not always online). Returns the server's reply line
  // ("250 Queuing started"); a refusal is kPermanent (5xx) or kTransient (458/459:
  // not queued here or not allowed), with the reply. kInvalidArgument for a domain
  // that is not [A-Za-z0-9.-].
  Result<std::string> etrn(std::string_view domain);
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  Result<> remove(const MailRef& ref) override;

  SmtpLink(SmtpConfig config, std::unique_ptr<CurlEasy> easy,
           std::unique_ptr<CurlSlist> resolve);  // use open()

 private:
  SmtpConfig config_;
  std::unique_ptr<CurlSlist> resolve_;  // CURLOPT_RESOLVE list; outlives easy_ (declared first)
  std::unique_ptr<CurlEasy> easy_;
};

}  // namespace sqlpost::transport
