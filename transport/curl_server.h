// sqlpost/transport/curl_server.h — how to reach one mail server with libcurl, and
// what its failures mean.
//
// Contract: MailServer holds the connection settings shared by the SMTP, POP3 and
// IMAP links. check_server() rejects unusable settings with kConfig (empty or
// malformed host, CR/LF/NUL in user or password, zero timeouts). server_url() builds
// "<scheme>://<host>:<port>" (IPv6 literals bracketed; port 0 = the standard port of
// the protocol and security). apply_server() sets the libcurl options: credentials,
// TLS (kStartTls = STARTTLS/STLS with CURLUSESSL_ALL, never a downgrade; kTls =
// implicit TLS; kNone = clear text, also for the password — callers warn), CA file,
// verification (verify=false switches off peer and host checks — callers warn),
// timeouts and the allowed protocols. With a bearer token (OAuth2), it goes to
// libcurl (CURLOPT_XOAUTH2_BEARER) instead of the password, and the login is limited
// to OAUTHBEARER or XOAUTH2 (whichever the server offers; `auth` picks one). mail_error()
// maps a failed transfer:
//   login denied                           -> kConfig ("wrong user name or password",
//                                             or "the OAuth2 access token was refused")
//   IMAP mailbox cannot be selected        -> kConfig
//   certificate / CA file problems         -> kConfig (names the certificate problem)
//   no STARTTLS offered, bad URL/protocol  -> kConfig
//   body over the limit                    -> kLimitExceeded
//   remote file not found (IMAP UID gone)  -> kNotFound
//   reply 5xx (SMTP)                       -> kPermanent, with the server's reply line
//   reply 4xx, refused/failed connection, DNS, timeout, TLS handshake, other
//                                          -> kTransient (timeouts too, "timed out")
// Neither the password nor the bearer token ever appears in a message.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_handle.h"

namespace sqlpost::transport {

enum class MailSecurity {
  kStartTls,  // plain port, STARTTLS/STLS required (default)
  kTls,       // implicit TLS (smtps, pop3s, imaps)
  kNone,      // no TLS at all: credentials and mail travel in clear text
};

enum class MailProtocol { kSmtp, kPop3, kImap, kFtp };

struct MailServer {
  std::string host;
  std::uint16_t port = 0;  // 0: the standard port for the protocol and security
  MailSecurity security = MailSecurity::kStartTls;
  std::string user;  // empty: no login (SMTP relay without AUTH)
  std::string password;
  std::string auth;           // SASL mechanism (PLAIN, LOGIN, CRAM-MD5, ...); empty: libcurl picks
  std::string bearer;         // OAuth2 access token; when set, used instead of the password
  std::string bearer_source;  // where the token came from, for messages (a setting's name)
  std::string ca_file;        // PEM bundle; empty: the system's CA store
  bool verify = true;         // false: accept any certificate (callers warn)
  std::chrono::milliseconds connect_timeout{30'000};   // DNS, TCP, TLS, greeting, login
  std::chrono::milliseconds response_timeout{60'000};  // each reply; also stall detection
  std::chrono::milliseconds timeout{600'000};          // hard cap on one transfer
};

const char* protocol_name(MailProtocol protocol);
std::uint16_t standard_port(MailProtocol protocol, MailSecurity security);

Result<> check_server(const MailServer& server);
std::string server_url(MailProtocol protocol, const MailServer& server);
// server_url() + `encoded_path` (each segment already made by url_segment(), joined by
// '/'), assembled and checked by libcurl's URL API (curl_url). kConfig when libcurl
// refuses the result (e.g. a host it cannot parse).
Result<std::string> make_url(MailProtocol protocol, const MailServer& server,
                             std::string_view encoded_path);
// `raw` percent-encoded for one URL path segment: every byte but A-Z a-z 0-9 - . _ ~.
std::string url_segment(std::string_view raw);
// "host:port" for messages.
std::string server_name(MailProtocol protocol, const MailServer& server);
void apply_server(CurlEasy& easy, MailProtocol protocol, const MailServer& server);

// The non-empty lines of a multi-line server reply, without their CR LF.
std::vector<std::string_view> reply_lines(std::string_view body);

// The SASL mechanisms the server offered in the last capability list of `reply` (the
// reply lines of a conversation): SMTP "250-AUTH A B" (or "AUTH=A B"), POP3 CAPA
// "SASL A B", IMAP "AUTH=A" words of a CAPABILITY line. Upper case, each once.
// nullopt when no capability list was seen; empty when the list names none.
std::optional<std::vector<std::string>> offered_mechanisms(std::string_view reply);

// Why a denied login (CURLE_LOGIN_DENIED) was denied, when the server's replies tell
// more than "wrong password": a POP3 "-ERR [LOGIN-DELAY]" answer (RFC 2449; kTransient,
// "login delay: the server allows a login only every N seconds ..." with N from CAPA
// "LOGIN-DELAY N" when given), "-ERR [IN-USE]" (kTransient), or a wanted mechanism
// (CurlEasy::wanted_mechanisms) the server does not offer (kConfig, "the server offers
// AUTH X Y, not Z"); without a wanted mechanism, a server offering only mechanisms
// libcurl lacks (e.g. SCRAM-SHA-256) and no plain login (POP3 USER, IMAP LOGIN) is
// named too (kConfig, "the server offers AUTH SCRAM-SHA-256 only ..."). nullopt otherwise.
struct LoginRefusal {
  Errc code = Errc::kConfig;
  std::string reason;
};
std::optional<LoginRefusal> login_refusal(const CurlEasy& easy);

// `what` names the operation ("SMTP send to a@b via host:587").
Error mail_error(const CurlEasy& easy, CURLcode rc, std::string_view what);

}  // namespace sqlpost::transport
