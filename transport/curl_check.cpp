#include "transport/curl_check.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "transport/curl_handle.h"
#include "transport/curl_imap.h"

namespace sqlpost::transport {
namespace {

// What the debug trace showed of the conversation (never its data).
struct Progress {
  std::string greeting;  // the first reply line
  bool starttls_sent = false;
  bool login_sent = false;
};

std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 200)) {
    if (c == '\r' || c == '\n') break;
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return out;
}

bool has_word(std::string_view line, std::string_view word) {
  const std::size_t at = line.find(word);
  return at != std::string_view::npos && (at == 0 || line[at - 1] == ' ');
}

void observe(Progress& p, curl_infotype type, std::string_view data) {
  if (type == CURLINFO_HEADER_IN && p.greeting.empty()) {
    p.greeting = printable(data);
  } else if (type == CURLINFO_HEADER_OUT) {
    const std::string_view line = data.substr(0, 40);  // never look at credentials
    p.starttls_sent = p.starttls_sent || has_word(line, "STARTTLS") || has_word(line, "STLS");
    p.login_sent = p.login_sent || has_word(line, "AUTH") || has_word(line, "USER") ||
                   has_word(line, "APOP") || has_word(line, "AUTHENTICATE") ||
                   has_word(line, "LOGIN");
  }
}

bool tls_problem(CURLcode rc) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS: return true;
    default: return false;
  }
}

// The names of the steps for these settings, in order.
std::vector<std::string> plan(MailProtocol protocol, const MailServer& server) {
  std::vector<std::string> steps{"connect"};
  if (server.security == MailSecurity::kTls) steps.emplace_back("TLS");
  steps.emplace_back("greeting");
  if (server.security == MailSecurity::kStartTls) {
    steps.emplace_back("STARTTLS");
    steps.emplace_back("TLS");
  }
  if (!server.user.empty()) steps.emplace_back("login");
  steps.emplace_back(protocol == MailProtocol::kSmtp ? "ready" : "mailbox");
  return steps;
}

// The step that failed, from the error and how far the conversation got.
std::string failed_step(CURLcode rc, const CurlEasy& easy, const Progress& p,
                        const MailServer& server, const std::string& final_step) {
  const std::string detail = easy.error_text(rc);
  if (rc == CURLE_USE_SSL_FAILED) return "STARTTLS";
  if (tls_problem(rc)) return "TLS";
  if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
      easy.connect_time_us() <= 0) {
    return "connect";
  }
  if (rc == CURLE_LOGIN_DENIED) {
    return detail.find("Select failed") != std::string::npos ? "mailbox" : "login";
  }
  if (p.greeting.empty()) return "greeting";
  const bool starttls = server.security == MailSecurity::kStartTls;
  if (starttls && !p.starttls_sent) return "STARTTLS";
  if (!server.user.empty() && !p.login_sent) return starttls ? "TLS" : "login";
  return final_step;
}

std::string explain(const std::string& step, CURLcode rc, const CurlEasy& easy,
                    const MailServer& server, MailProtocol protocol) {
  const std::string where = server_name(protocol, server);
  const std::string detail = easy.error_text(rc);
  if (step == "connect") {
    if (rc == CURLE_COULDNT_RESOLVE_HOST) return "cannot resolve the host name: " + detail;
    if (rc == CURLE_OPERATION_TIMEDOUT) return "no connection to " + where + ": timed out";
    return "cannot connect to " + where + " (refused or unreachable): " + detail;
  }
  if (step == "STARTTLS") return "the server does not offer STARTTLS: " + detail;
  if (step == "TLS") {
    if (rc == CURLE_SSL_CONNECT_ERROR) {
      return "TLS handshake failed (implicit TLS vs. STARTTLS port?): " + detail;
    }
    return "the server's certificate is not trusted: " + detail +
           " (set the CA file that signed it, or check the host name)";
  }
  if (step == "login") {
    if (rc == CURLE_OK) {  // the conversation worked, but without the login
      return "the server did not offer a login (no AUTH"
             " capability on this port and security setting), so the user name and password "
             "were never used; a server that wants them refuses mail later (e.g. 530). Use "
             "security=starttls or tls, or the submission port 587";
    }
    if (rc == CURLE_LOGIN_DENIED) {
      if (auto refusal = login_refusal(easy)) return refusal->reason;
    }
    if (rc == CURLE_LOGIN_DENIED && easy.uses_bearer()) {
      return "login denied: " + easy.bearer_refused();
    }
    if (rc == CURLE_LOGIN_DENIED) return "login denied: wrong user name or password";
    return "login did not complete: " + detail;
  }
  if (step == "greeting") {
    if (rc == CURLE_OPERATION_TIMEDOUT) return "connected, but the server sent no greeting";
    return "no usable greeting: " + detail;
  }
  const std::string reply = easy.failure_reply_line(easy.response_code());
  const std::string said = reply.empty() ? "" : " (server said: " + reply + ")";
  if (step == "mailbox" && rc == CURLE_LOGIN_DENIED) {
    return "the mailbox does not exist or cannot be opened" + said;
  }
  return detail + said;
}

std::string success_detail(const std::string& step, const Progress& p, const MailServer& server,
                           MailProtocol protocol) {
  if (step == "connect") return "connected to " + server_name(protocol, server);
  if (step == "greeting") return p.greeting;
  if (step == "STARTTLS") return "STARTTLS accepted";
  if (step == "TLS") {
    return server.verify ? "TLS established, certificate trusted"
                         : "TLS established; certificate NOT verified (verify is off)";
  }
  if (step == "login" && !server.bearer.empty()) {
    return "logged in as " + server.user + " with an OAuth2 access token" +
           (server.bearer_source.empty() ? std::string() : " from " + server.bearer_source);
  }
  if (step == "login") return "logged in as " + server.user;
  if (step == "ready") return "the server accepts commands";
  return "mailbox opened";
}

// Runs `url` + `custom` (NOBODY) and turns the outcome into steps.
// `resolve`: CURLOPT_RESOLVE entries (direct send: the MX address looked up), or null.
Result<std::vector<CheckStep>> run_check(MailProtocol protocol, const MailServer& server,
                                         const std::string& url, const char* custom,
                                         curl_slist* resolve = nullptr) {
  SQLPOST_TRY(check_server(server));
  SQLPOST_TRY_ASSIGN(auto easy, CurlEasy::create());
  apply_server(*easy, protocol, server);
  easy->set(CURLOPT_RESOLVE, resolve);
  Progress progress;
  easy->set_trace(
      [&progress](curl_infotype type, std::string_view data) { observe(progress, type, data); });
  easy->set(CURLOPT_URL, url.c_str());
  easy->set(CURLOPT_CUSTOMREQUEST, custom);
  easy->set(CURLOPT_NOBODY, 1L);
  easy->set(CURLOPT_FORBID_REUSE, 1L);
  const CURLcode rc = easy->perform();
  const std::vector<std::string> names = plan(protocol, server);
  std::string failed =
      rc == CURLE_OK ? std::string() : failed_step(rc, *easy, progress, server, names.back());
  if (rc == CURLE_OK && !server.user.empty() && !progress.login_sent) {
    failed = "login";  // credentials were set, and never asked for
  }
  std::vector<CheckStep> steps;
  for (const std::string& name : names) {
    if (name == failed) {
      steps.push_back(CheckStep{name, false, explain(name, rc, *easy, server, protocol)});
      break;
    }
    steps.push_back(CheckStep{name, true, success_detail(name, progress, server, protocol)});
  }
  return steps;
}

}  // namespace

Result<std::vector<CheckStep>> check_smtp(const SmtpConfig& config,
                                          const std::string& connect_address) {
  const std::string helo = config.helo_name.empty() ? "localhost" : config.helo_name;
  SQLPOST_TRY_ASSIGN(const auto resolve, connect_to(config, connect_address));
  return run_check(MailProtocol::kSmtp, config.server,
                   server_url(MailProtocol::kSmtp, config.server) + "/" + helo, "NOOP",
                   resolve ? resolve->get() : nullptr);
}

Result<std::vector<CheckStep>> check_pop3(const MailServer& server) {
  return run_check(MailProtocol::kPop3, server, server_url(MailProtocol::kPop3, server) + "/",
                   "STAT");
}

Result<std::vector<CheckStep>> check_imap(const ImapConfig& config) {
  SQLPOST_TRY_ASSIGN(const std::string url, imap_mailbox_url(config.server, config.mailbox));
  return run_check(MailProtocol::kImap, config.server, url, "NOOP");
}

}  // namespace sqlpost::transport
