#include "transport/curl_server.h"

#include <algorithm>
#include <memory>
#include <string>

namespace sqlpost::transport {
namespace {

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == ':' || c == '_';
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

const char* scheme(MailProtocol protocol, MailSecurity security) {
  const bool tls = security == MailSecurity::kTls;
  switch (protocol) {
    case MailProtocol::kSmtp: return tls ? "smtps" : "smtp";
    case MailProtocol::kPop3: return tls ? "pop3s" : "pop3";
    case MailProtocol::kImap: return tls ? "imaps" : "imap";
    case MailProtocol::kFtp: return tls ? "ftps" : "ftp";
  }
  return "smtp";
}

bool certificate_problem(CURLcode rc) {
  switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: return true;
    default: return false;
  }
}

// Errors decided by the CURLcode alone; kInternal code = "not decided".
Error classify_code(const CurlEasy& easy, CURLcode rc, const std::string& what) {
  const std::string detail = easy.error_text(rc);
  if (rc == CURLE_LOGIN_DENIED && detail.find("Select failed") != std::string::npos) {
    // libcurl reports a failed IMAP SELECT as a denied login.
    return make_error(Errc::kConfig, what + ": the mailbox does not exist or cannot be opened");
  }
  if (rc == CURLE_LOGIN_DENIED && easy.uses_bearer()) {
    return make_error(Errc::kConfig, what + ": login denied: " + easy.bearer_refused());
  }
  if (rc == CURLE_LOGIN_DENIED) {
    return make_error(Errc::kConfig, what + ": login denied: wrong user name or password");
  }
  if (certificate_problem(rc)) {
    return make_error(Errc::kConfig, what + ": the server's TLS certificate is not trusted (" +
                                         detail +
                                         "); set the CA file that signed it or fix the host name");
  }
  if (rc == CURLE_USE_SSL_FAILED) {
    return make_error(Errc::kConfig, what +
                                         ": the server does not offer STARTTLS; refusing to "
                                         "continue without TLS (" +
                                         detail + ")");
  }
  if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
      rc == CURLE_BAD_FUNCTION_ARGUMENT) {
    return make_error(Errc::kConfig, what + ": " + detail);
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return make_error(Errc::kTransient, what + ": timed out (" + detail + ")");
  }
  if (rc == CURLE_SSL_CONNECT_ERROR) {
    return make_error(Errc::kTransient, what + ": TLS handshake failed (" + detail +
                                            "); does the port expect implicit TLS or STARTTLS?");
  }
  if (rc == CURLE_REMOTE_FILE_NOT_FOUND) {
    return make_error(Errc::kNotFound, what + ": not found on the server");
  }
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
    return make_error(Errc::kTransient, what + ": cannot connect (" + detail + ")");
  }
  return make_error(Errc::kInternal, {});
}

}  // namespace

const char* protocol_name(MailProtocol protocol) {
  switch (protocol) {
    case MailProtocol::kSmtp: return "SMTP";
    case MailProtocol::kPop3: return "POP3";
    case MailProtocol::kImap: return "IMAP";
    case MailProtocol::kFtp: return "FTP";
  }
  return "mail";
}

std::uint16_t standard_port(MailProtocol protocol, MailSecurity security) {
  const bool tls = security == MailSecurity::kTls;
  switch (protocol) {
    case MailProtocol::kSmtp: return tls ? 465 : (security == MailSecurity::kStartTls ? 587 : 25);
    case MailProtocol::kPop3: return tls ? 995 : 110;
    case MailProtocol::kImap: return tls ? 993 : 143;
    case MailProtocol::kFtp: return tls ? 990 : 21;
  }
  return 0;
}

Result<> check_server(const MailServer& server) {
  if (server.host.empty() || server.host.size() > 253 ||
      !std::all_of(server.host.begin(), server.host.end(), host_char)) {
    return make_error(Errc::kConfig,
                      "mail server host '" + server.host + "' is not a host name or IP address");
  }
  if (has_control(server.user) || has_control(server.password)) {
    return make_error(Errc::kConfig, "mail user name or password contains a line break or NUL");
  }
  if (has_control(server.bearer)) {
    return make_error(Errc::kConfig, "the OAuth2 access token contains a line break or NUL");
  }
  if (!server.bearer.empty() && server.user.empty()) {
    return make_error(Errc::kConfig,
                      "an OAuth2 access token needs the user name it was issued for");
  }
  if (server.connect_timeout.count() <= 0 || server.response_timeout.count() <= 0 ||
      server.timeout.count() <= 0) {
    return make_error(Errc::kConfig, "mail timeouts must be positive");
  }
  return success();
}

std::string server_name(MailProtocol protocol, const MailServer& server) {
  const std::uint16_t port =
      server.port != 0 ? server.port : standard_port(protocol, server.security);
  const bool ipv6 = server.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + server.host + "]" : server.host) + ":" + std::to_string(port);
}

std::string server_url(MailProtocol protocol, const MailServer& server) {
  return std::string(scheme(protocol, server.security)) + "://" + server_name(protocol, server);
}

namespace {

struct UrlFree {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlFree {
  void operator()(char* text) const { curl_free(text); }
};

}  // namespace

std::string url_segment(std::string_view raw) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg): no handle needed since 7.82
  const std::unique_ptr<char, CurlFree> escaped(
      curl_easy_escape(nullptr, raw.data(), static_cast<int>(raw.size())));
  return escaped ? std::string(escaped.get()) : std::string();
}

Result<std::string> make_url(MailProtocol protocol, const MailServer& server,
                             std::string_view encoded_path) {
  std::unique_ptr<CURLU, UrlFree> url(curl_url());
  if (!url) {
    return make_error(Errc::kInternal, "libcurl could not allocate a URL");
  }
  const bool ipv6 = server.host.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + server.host + "]" : server.host;
  const std::uint16_t port =
      server.port != 0 ? server.port : standard_port(protocol, server.security);
  const std::string port_text = std::to_string(port);
  const std::string path = "/" + std::string(encoded_path);
  CURLUcode rc = curl_url_set(url.get(), CURLUPART_SCHEME, scheme(protocol, server.security),
                              CURLU_NON_SUPPORT_SCHEME);
  if (rc == CURLUE_OK) rc = curl_url_set(url.get(), CURLUPART_HOST, host.c_str(), 0);
  if (rc == CURLUE_OK) rc = curl_url_set(url.get(), CURLUPART_PORT, port_text.c_str(), 0);
  if (rc == CURLUE_OK) rc = curl_url_set(url.get(), CURLUPART_PATH, path.c_str(), 0);
  char* text = nullptr;
  if (rc == CURLUE_OK) rc = curl_url_get(url.get(), CURLUPART_URL, &text, 0);
  const std::unique_ptr<char, CurlFree> owned(text);
  if (rc != CURLUE_OK || text == nullptr) {
    return make_error(Errc::kConfig, "cannot make a " + std::string(protocol_name(protocol)) +
                                         " URL for host '" + server.host +
                                         "': " + curl_url_strerror(rc));
  }
  return std::string(text);
}

void apply_server(CurlEasy& easy, MailProtocol protocol, const MailServer& server) {
  const std::string protocols = std::string(scheme(protocol, MailSecurity::kNone)) + "," +
                                scheme(protocol, MailSecurity::kTls);
  easy.set(CURLOPT_PROTOCOLS_STR, protocols.c_str());  // libcurl copies strings
  if (!server.user.empty()) {
    easy.set(CURLOPT_USERNAME, server.user.c_str());
  }
  if (!server.bearer.empty()) {
    easy.set_bearer(server.bearer, server.bearer_source);
    // libcurl would prefer CRAM-MD5 or NTLM (with an empty password) when offered too.
    const std::string options =
        server.auth.empty() ? "AUTH=OAUTHBEARER;AUTH=XOAUTH2" : "AUTH=" + server.auth;
    easy.set(CURLOPT_LOGIN_OPTIONS, options.c_str());
  } else {
    if (!server.user.empty()) {
      easy.set(CURLOPT_PASSWORD, server.password.c_str());
    }
    if (!server.auth.empty()) {
      const std::string options = "AUTH=" + server.auth;
      easy.set(CURLOPT_LOGIN_OPTIONS, options.c_str());
    }
  }
  const bool tls = server.security != MailSecurity::kNone;
  easy.set(CURLOPT_USE_SSL, static_cast<long>(tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
  if (!server.ca_file.empty()) {
    easy.set(CURLOPT_CAINFO, server.ca_file.c_str());
  }
  easy.set(CURLOPT_SSL_VERIFYPEER, server.verify ? 1L : 0L);
  easy.set(CURLOPT_SSL_VERIFYHOST, server.verify ? 2L : 0L);
  easy.set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(server.connect_timeout.count()));
  const long response_s = std::max(1L, static_cast<long>(server.response_timeout.count() / 1000));
  easy.set(CURLOPT_SERVER_RESPONSE_TIMEOUT, response_s);
  easy.set(CURLOPT_LOW_SPEED_LIMIT, 1L);
  easy.set(CURLOPT_LOW_SPEED_TIME, response_s);
  easy.set(CURLOPT_TIMEOUT_MS, static_cast<long>(server.timeout.count()));
  // An idle cached connection older than this is dropped without QUIT, which would roll
  // back POP3 deletions: keep sessions alive as long as the server does.
  easy.set(CURLOPT_MAXAGE_CONN, 3600L);
}

std::vector<std::string_view> reply_lines(std::string_view body) {
  std::vector<std::string_view> lines;
  while (!body.empty()) {
    const std::size_t end = body.find('\n');
    std::string_view line = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

Error mail_error(const CurlEasy& easy, CURLcode rc, std::string_view what_view) {
  const std::string what(what_view);
  if (rc == CURLE_WRITE_ERROR && easy.overflowed()) {
    return make_error(Errc::kLimitExceeded, what + ": the server sent more than " +
                                                std::to_string(kMaxMailBytes) +
                                                " bytes (kMaxMailBytes); transfer aborted");
  }
  Error error = classify_code(easy, rc, what);
  if (error.code != Errc::kInternal) {
    return error;
  }
  const long code = easy.response_code();
  const std::string reply = easy.failure_reply_line(code);
  if (code >= 500 && code < 600) {
    return make_error(Errc::kPermanent, what + ": the server refused: " + reply);
  }
  if (code >= 400 && code < 500) {
    return make_error(Errc::kTransient, what + ": the server deferred: " + reply);
  }
  std::string message = what + ": " + easy.error_text(rc);
  if (!reply.empty()) {
    message += " (server said: " + reply + ")";
  }
  return make_error(Errc::kTransient, std::move(message));
}

}  // namespace sqlpost::transport
