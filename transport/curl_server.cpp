#include "transport/curl_server.h"

#include <algorithm>
#include <charconv>
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
  if (rc == CURLE_LOGIN_DENIED) {
    if (auto refusal = login_refusal(easy)) {
      return make_error(refusal->code, what + ": " + refusal->reason);
    }
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
    easy.set_wanted_mechanisms(server.auth.empty()
                                   ? std::vector<std::string>{"OAUTHBEARER", "XOAUTH2"}
                                   : std::vector<std::string>{server.auth});
  } else {
    if (!server.user.empty()) {
      easy.set(CURLOPT_PASSWORD, server.password.c_str());
    }
    if (!server.auth.empty()) {
      const std::string options = "AUTH=" + server.auth;
      easy.set(CURLOPT_LOGIN_OPTIONS, options.c_str());
      easy.set_wanted_mechanisms({server.auth});
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

namespace {

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  });
  return out;
}

bool starts_with_word(std::string_view line, std::string_view word) {
  return upper(line.substr(0, word.size())) == word &&
         (line.size() == word.size() || line[word.size()] == ' ' || line[word.size()] == '=');
}

// The space-separated words of `text`, upper case, each once, without "]" or ")".
void add_words(std::string_view text, std::vector<std::string>& words) {
  while (!text.empty()) {
    const std::size_t end = text.find(' ');
    std::string word = upper(text.substr(0, end));
    while (!word.empty() && (word.back() == ']' || word.back() == ')')) {
      word.pop_back();
    }
    if (!word.empty() && std::find(words.begin(), words.end(), word) == words.end()) {
      words.push_back(std::move(word));
    }
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  }
}

// The capability words of an IMAP "* CAPABILITY ..." line or "[CAPABILITY ...]" response
// code (greeting, tagged OK); nullopt for any other line.
std::optional<std::string_view> imap_capabilities(std::string_view line) {
  const std::string capitals = upper(line);
  const bool untagged = capitals.rfind("* CAPABILITY ", 0) == 0;
  const std::size_t code = capitals.find("[CAPABILITY ");
  if (!untagged && code == std::string::npos) {
    return std::nullopt;
  }
  std::string_view words = line.substr(untagged ? 13 : code + 12);
  return untagged ? words : words.substr(0, words.find(']'));
}

// The mechanisms one reply line lists, or nullopt when it is no capability line.
std::optional<std::vector<std::string>> line_mechanisms(std::string_view line) {
  std::vector<std::string> words;
  if (line.size() > 4 && line.substr(0, 3) == "250" && (line[3] == '-' || line[3] == ' ') &&
      starts_with_word(line.substr(4), "AUTH")) {
    add_words(line.substr(9), words);  // SMTP EHLO
    return words;
  }
  if (starts_with_word(line, "SASL")) {
    add_words(line.substr(5), words);  // POP3 CAPA
    return words;
  }
  if (line == "USER" || line == "UIDL") {
    return words;  // a POP3 CAPA list (USER/PASS only, unless a SASL line follows)
  }
  const auto words_text = imap_capabilities(line);
  if (!words_text) {
    return std::nullopt;
  }
  std::vector<std::string> all;
  add_words(*words_text, all);
  for (const std::string& word : all) {
    if (word.rfind("AUTH=", 0) == 0 && word.size() > 5) {
      words.push_back(word.substr(5));  // IMAP
    }
  }
  return words;
}

std::string joined(const std::vector<std::string>& words, const char* separator) {
  std::string out;
  for (const std::string& word : words) {
    out += (out.empty() ? "" : separator) + word;
  }
  return out;
}

// The number of a POP3 CAPA line "LOGIN-DELAY N", or 0.
long login_delay_seconds(std::string_view reply) {
  for (const std::string_view line : reply_lines(reply)) {
    if (starts_with_word(line, "LOGIN-DELAY") && line.size() > 12) {
      const std::string_view rest = line.substr(12);
      long seconds = 0;
      const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), seconds);
      (void)end;
      if (ec == std::errc() && seconds > 0) {
        return seconds;
      }
    }
  }
  return 0;
}

std::string delay_reason(const CurlEasy& easy, const std::string& said) {
  const long seconds = login_delay_seconds(easy.reply());
  const std::string every = seconds > 0
                                ? "every " + std::to_string(seconds) + " seconds" +
                                      (seconds >= 120 && seconds % 60 == 0
                                           ? " (" + std::to_string(seconds / 60) + " minutes)"
                                           : std::string())
                                : "every so often (it did not say how often)";
  return "login delay: the server allows a login only " + every +
         ", and the last one was more recent; the password was not refused. Log in less "
         "often (run --every " +
         (seconds > 0 ? std::to_string(seconds) : std::string("N")) +
         " or more; smtp.pop_before_smtp adds a login to runs that only send) (server said: " +
         said + ")";
}

// A plain login besides SASL: POP3 USER/PASS (CAPA "USER"), IMAP LOGIN (the last
// capability list without LOGINDISABLED).
bool plain_login_offered(std::string_view reply) {
  bool pop3_user = false;
  std::optional<bool> imap_login;
  for (const std::string_view line : reply_lines(reply)) {
    pop3_user = pop3_user || line == "USER";
    if (const auto words = imap_capabilities(line)) {
      imap_login = upper(*words).find("LOGINDISABLED") == std::string::npos;
    }
  }
  return pop3_user || imap_login.value_or(false);
}

// libcurl picks the mechanism (no `auth` setting): a refusal is the server's, unless
// it offers only mechanisms libcurl does not have (e.g. SCRAM-SHA-256 alone) and no
// plain login either; then libcurl never tried.
std::optional<LoginRefusal> unusable_mechanisms(std::string_view reply,
                                                const std::vector<std::string>& offered) {
  static const std::vector<std::string> known{"PLAIN",      "LOGIN",   "CRAM-MD5",
                                              "DIGEST-MD5", "NTLM",    "EXTERNAL",
                                              "GSSAPI",     "XOAUTH2", "OAUTHBEARER"};
  const bool usable = std::any_of(offered.begin(), offered.end(), [](const std::string& name) {
    return std::find(known.begin(), known.end(), name) != known.end();
  });
  if (offered.empty() || usable || plain_login_offered(reply)) {
    return std::nullopt;
  }
  return LoginRefusal{Errc::kConfig,
                      "the server offers AUTH " + joined(offered, " ") +
                          " only, and none of these is one sqlpost (libcurl) can use (PLAIN, "
                          "LOGIN, CRAM-MD5, DIGEST-MD5, NTLM, EXTERNAL, GSSAPI, XOAUTH2, "
                          "OAUTHBEARER): the password was never sent; ask the provider for "
                          "PLAIN or LOGIN over TLS, or OAuth2"};
}

}  // namespace

std::optional<std::vector<std::string>> offered_mechanisms(std::string_view reply) {
  std::optional<std::vector<std::string>> offered;
  bool pop3_sasl = false;  // a POP3 SASL line in this CAPA list
  for (const std::string_view line : reply_lines(reply)) {
    auto words = line_mechanisms(line);
    if (!words) {
      continue;
    }
    const bool sasl_line = starts_with_word(line, "SASL");
    if (!sasl_line && words->empty() && (line == "USER" || line == "UIDL") && pop3_sasl) {
      continue;  // another line of the CAPA list that already had its SASL line
    }
    pop3_sasl = sasl_line;
    offered = std::move(words);
  }
  return offered;
}

std::optional<LoginRefusal> login_refusal(const CurlEasy& easy) {
  const std::string said = easy.failure_reply_line(0);
  if (said.rfind("-ERR [LOGIN-DELAY]", 0) == 0) {
    return LoginRefusal{Errc::kTransient, delay_reason(easy, said)};
  }
  if (said.rfind("-ERR [IN-USE]", 0) == 0) {
    return LoginRefusal{Errc::kTransient,
                        "the mailbox is in use by another session (another mail program, or "
                        "another sqlpost on the same mailbox); the password was not refused "
                        "(server said: " +
                            said + ")"};
  }
  const std::vector<std::string>& wanted = easy.wanted_mechanisms();
  const auto offered = offered_mechanisms(easy.reply());
  if (!offered) {
    return std::nullopt;
  }
  if (wanted.empty()) {
    return unusable_mechanisms(easy.reply(), *offered);
  }
  for (const std::string& mechanism : wanted) {
    if (std::find(offered->begin(), offered->end(), upper(mechanism)) != offered->end()) {
      return std::nullopt;  // offered: the login itself was refused
    }
  }
  const std::string offers =
      offered->empty() ? "no SASL mechanism" : "AUTH " + joined(*offered, " ");
  const std::string advice =
      easy.uses_bearer()
          ? " (an OAuth2 access token needs one of these: does this server take OAuth2?)"
          : " (the mechanism chosen with the auth setting): set one it offers, or unset it "
            "to let sqlpost pick";
  return LoginRefusal{Errc::kConfig,
                      "the server offers " + offers + ", not " + joined(wanted, " or ") + advice};
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
