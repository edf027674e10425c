#include "agent/mail_settings.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>

#include "agent/oauth2.h"
#include "agent/params.h"
#include "platform/console.h"
#include "platform/dns.h"
#include "platform/files.h"

namespace sqlpost {
namespace {

using transport::MailSecurity;
using transport::MailServer;

std::string key_of(std::string_view prefix, std::string_view name) {
  return std::string(prefix) + "." + std::string(name);
}

Result<std::string> receive_protocol(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto receive, get_config(db, "receive"));
  return receive.value_or("pop3");
}

Result<bool> has_any(Database& db, std::initializer_list<std::string> keys) {
  for (const auto& key : keys) {
    SQLPOST_TRY_ASSIGN(const auto value, get_config(db, key));
    if (value) {
      return true;
    }
  }
  return false;
}

Result<bool> has_password(Database& db, std::string_view prefix) {
  const std::string base = key_of(prefix, "password");
  return has_any(db, {base, base + "_file", base + "_env"});
}

std::string token_key(std::string_view prefix) { return key_of(prefix, "oauth2_token_command"); }

// A password or an OAuth2 token command.
Result<bool> has_login_secret(Database& db, std::string_view prefix) {
  SQLPOST_TRY_ASSIGN(const bool password, has_password(db, prefix));
  SQLPOST_TRY_ASSIGN(const bool token, has_any(db, {token_key(prefix)}));
  return password || token;
}

Error config_error(const std::string& message) { return make_error(Errc::kConfig, message); }

// The first line of a password file; the file must not be readable by others.
Result<std::string> password_from_file(const std::string& key, const std::string& path) {
  const platform::Privacy privacy = platform::file_privacy(path);
  if (privacy == platform::Privacy::kNotRegularFile) {
    return config_error(key + ": '" + path + "' is not a readable regular file");
  }
  if (privacy == platform::Privacy::kReadableByOthers) {
    return config_error(key + ": '" + path +
                        "' may be read by other users; make it private with: " +
                        platform::make_private_command(path));
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return config_error(key + ": cannot read a password from '" + path + "'");
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  return line;
}

Result<std::optional<std::string>> password_of(Database& db, std::string_view prefix) {
  const std::string base = key_of(prefix, "password");
  SQLPOST_TRY_ASSIGN(const auto env_name, get_config(db, base + "_env"));
  if (env_name) {
    const char* value = std::getenv(env_name->c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) {
      return config_error(base + "_env: the environment variable " + *env_name + " is not set");
    }
    return std::optional<std::string>(value);
  }
  SQLPOST_TRY_ASSIGN(const auto file, get_config(db, base + "_file"));
  if (file) {
    SQLPOST_TRY_ASSIGN(std::string password, password_from_file(base + "_file", *file));
    return std::optional<std::string>(std::move(password));
  }
  return get_config(db, base);
}

MailSecurity security_of(const std::optional<std::string>& text) {
  if (text == "tls") {
    return MailSecurity::kTls;
  }
  if (text == "none") {
    return MailSecurity::kNone;
  }
  return MailSecurity::kStartTls;
}

Result<std::uint16_t> port_of(Database& db, std::string_view prefix) {
  SQLPOST_TRY_ASSIGN(const std::int64_t port, int_parameter(db, key_of(prefix, "port"), 0));
  if (port < 0 || port > 65535) {
    return config_error(key_of(prefix, "port") + " must be from 1 to 65535");
  }
  return static_cast<std::uint16_t>(port);
}

Result<> apply_common(Database& db, MailServer& server) {
  SQLPOST_TRY_ASSIGN(const auto ca_file, get_config(db, "tls.ca_file"));
  server.ca_file = ca_file.value_or("");
  SQLPOST_TRY_ASSIGN(const bool off, tls_verification_off(db));
  server.verify = !off;
  SQLPOST_TRY_ASSIGN(const std::int64_t seconds, int_parameter(db, "timeout", 60));
  server.connect_timeout = std::chrono::seconds(seconds);
  server.response_timeout = std::chrono::seconds(seconds);
  server.timeout = std::chrono::seconds(std::max<std::int64_t>(600, seconds * 10));
  return success();
}

// The host/port/security/user/password of one protocol's parameters.
Result<MailServer> server_of(Database& db, std::string_view prefix) {
  MailServer server;
  SQLPOST_TRY_ASSIGN(const auto host, get_config(db, key_of(prefix, "host")));
  server.host = host.value_or("");
  SQLPOST_TRY_ASSIGN(server.port, port_of(db, prefix));
  SQLPOST_TRY_ASSIGN(const auto security, get_config(db, key_of(prefix, "security")));
  server.security = security_of(security);
  SQLPOST_TRY_ASSIGN(const auto user, get_config(db, key_of(prefix, "user")));
  server.user = user.value_or("");
  SQLPOST_TRY_ASSIGN(const auto password, password_of(db, prefix));
  server.password = password.value_or("");
  SQLPOST_TRY_ASSIGN(const auto auth, get_config(db, key_of(prefix, "auth")));
  server.auth = auth.value_or("");
  SQLPOST_TRY(apply_common(db, server));
  return server;
}

bool bearer_mechanism(std::string_view auth) { return auth == "XOAUTH2" || auth == "OAUTHBEARER"; }

// `prefix`.auth fits the login: XOAUTH2/OAUTHBEARER only with a token, a token only with them.
Result<> check_mechanism(std::string_view prefix, const MailServer& server, bool with_token) {
  const std::string auth_key = key_of(prefix, "auth");
  if (!with_token && bearer_mechanism(server.auth)) {
    return config_error(auth_key + "=" + server.auth + " needs an OAuth2 access token: set " +
                        token_key(prefix));
  }
  if (with_token && !server.auth.empty() && !bearer_mechanism(server.auth)) {
    return config_error(auth_key + "=" + server.auth + " cannot carry the OAuth2 access token of " +
                        token_key(prefix) + ": set it to XOAUTH2 or OAUTHBEARER, or unset it");
  }
  return success();
}

// Runs `prefix`.oauth2_token_command when set: its token replaces the password.
Result<> attach_token(Database& db, std::string_view prefix, MailServer& server) {
  const std::string key = token_key(prefix);
  SQLPOST_TRY_ASSIGN(const auto command, get_config(db, key));
  SQLPOST_TRY(check_mechanism(prefix, server, command.has_value()));
  if (!command) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(server.bearer, run_token_command(key, *command));
  server.bearer_source = key;
  server.password.clear();
  return success();
}

// SMTP uses its own token command, else the receive account's token when it has no
// password of its own (as it shares the receive account's user and password).
Result<> attach_smtp_token(Database& db, transport::MailLinkConfig& config) {
  SQLPOST_TRY_ASSIGN(const bool own_command, has_any(db, {token_key("smtp")}));
  SQLPOST_TRY_ASSIGN(const bool own_password, has_password(db, "smtp"));
  if (own_command || own_password || config.inbox_server.bearer.empty()) {
    return attach_token(db, "smtp", config.smtp.server);
  }
  SQLPOST_TRY(check_mechanism("smtp", config.smtp.server, true));
  config.smtp.server.bearer = config.inbox_server.bearer;
  config.smtp.server.bearer_source = config.inbox_server.bearer_source;
  config.smtp.server.password.clear();
  return success();
}

// smtp.mode=direct: the MX port and resolver; no credentials ever go to an MX.
Result<> apply_direct(Database& db, transport::MailLinkConfig& config) {
  SQLPOST_TRY_ASSIGN(config.direct, direct_send(db));
  if (!config.direct) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t port,
                     int_parameter(db, "smtp.mx_port", transport::kDefaultMxPort));
  if (port < 1 || port > 65535) {
    return config_error("smtp.mx_port must be from 1 to 65535");
  }
  config.smtp.server.host.clear();
  config.smtp.server.port = static_cast<std::uint16_t>(port);
  config.smtp.server.user.clear();
  config.smtp.server.password.clear();
  SQLPOST_TRY_ASSIGN(const auto dns, get_config(db, "smtp.dns_server"));
  if (dns) {
    auto server = platform::parse_dns_server(*dns);
    if (!server.ok()) {
      return config_error("smtp.dns_server: " + server.error().message);
    }
    config.dns = std::move(server).value();
  }
  config.dns.timeout = config.smtp.server.connect_timeout;
  return success();
}

}  // namespace

Result<bool> tls_verification_off(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto verify, get_config(db, "tls.verify"));
  return verify == "no";
}

Result<bool> direct_send(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto mode, get_config(db, "smtp.mode"));
  return mode == "direct";
}

Result<std::vector<std::string>> missing_mail_parameters(Database& db) {
  std::vector<std::string> missing;
  SQLPOST_TRY_ASSIGN(const bool smtp_host, has_any(db, {"smtp.host"}));
  SQLPOST_TRY_ASSIGN(const bool direct, direct_send(db));
  if (!smtp_host && !direct) {
    missing.emplace_back("smtp.host");
  }
  SQLPOST_TRY_ASSIGN(const std::string receive, receive_protocol(db));
  for (const char* name : {"host", "user"}) {
    SQLPOST_TRY_ASSIGN(const bool set, has_any(db, {key_of(receive, name)}));
    if (!set) {
      missing.push_back(key_of(receive, name));
    }
  }
  SQLPOST_TRY_ASSIGN(const bool secret, has_login_secret(db, receive));
  if (!secret) {
    missing.push_back(key_of(receive, "password"));
  }
  return missing;
}

Result<transport::MailLinkConfig> load_mail_settings(Database& db, const LocalSite& site) {
  transport::MailLinkConfig config;
  SQLPOST_TRY_ASSIGN(const std::string receive, receive_protocol(db));
  config.inbox =
      receive == "imap" ? transport::InboxProtocol::kImap : transport::InboxProtocol::kPop3;
  SQLPOST_TRY_ASSIGN(config.inbox_server, server_of(db, receive));
  SQLPOST_TRY_ASSIGN(const auto mailbox, get_config(db, "imap.mailbox"));
  config.imap_mailbox = mailbox.value_or("INBOX");

  SQLPOST_TRY_ASSIGN(config.smtp.server, server_of(db, "smtp"));
  if (config.smtp.server.user.empty()) {
    config.smtp.server.user = config.inbox_server.user;
  }
  SQLPOST_TRY_ASSIGN(const bool own_password, has_password(db, "smtp"));
  if (!own_password) {
    config.smtp.server.password = config.inbox_server.password;
  }
  config.smtp.from_address = site.address;
  SQLPOST_TRY_ASSIGN(const auto local_host, get_config(db, "smtp.local_host"));
  config.smtp.helo_name = local_host.value_or("");  // empty: the machine's host name
  SQLPOST_TRY(apply_direct(db, config));
  SQLPOST_TRY_ASSIGN(const auto pop_first, get_config(db, "smtp.pop_before_smtp"));
  config.pop_before_smtp = pop_first == "yes";
  if (config.pop_before_smtp && config.direct) {
    return config_error(
        "smtp.pop_before_smtp=yes needs the provider's SMTP relay (it lets a mailbox that "
        "logged in send), and smtp.mode=direct sends to other domains' MX servers: set "
        "smtp.mode=relay, or smtp.pop_before_smtp=no");
  }
  SQLPOST_TRY(attach_token(db, receive, config.inbox_server));
  if (!config.direct) {
    SQLPOST_TRY(attach_smtp_token(db, config));
  }
  return config;
}

Result<std::vector<std::string>> partner_domains(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  std::vector<std::string> domains;
  for (const auto& partner : partners) {
    const std::size_t at = partner.address.rfind('@');
    std::string domain = at == std::string::npos ? std::string() : partner.address.substr(at + 1);
    if (!domain.empty() && std::find(domains.begin(), domains.end(), domain) == domains.end()) {
      domains.push_back(std::move(domain));
    }
  }
  return domains;
}

Result<std::vector<std::string>> missing_ftp_parameters(Database& db) {
  std::vector<std::string> missing;
  for (const char* key : {"ftp.host", "ftp.user"}) {
    SQLPOST_TRY_ASSIGN(const bool set, has_any(db, {key}));
    if (!set) {
      missing.emplace_back(key);
    }
  }
  SQLPOST_TRY_ASSIGN(const bool password, has_password(db, "ftp"));
  if (!password) {
    missing.emplace_back("ftp.password");
  }
  return missing;
}

Result<transport::FtpConfig> load_ftp_settings(Database& db, const LocalSite& site) {
  transport::FtpConfig config;
  SQLPOST_TRY_ASSIGN(config.server, server_of(db, "ftp"));
  SQLPOST_TRY_ASSIGN(const auto dir, get_config(db, "ftp.dir"));
  config.dir = dir.value_or("");
  config.own_address = site.address;
  return config;
}

Result<std::string> read_secret(std::string_view prompt) {
  const bool terminal = platform::stdin_is_terminal();
  std::string line;
  bool got = false;
  {
    const platform::EchoOff quiet;  // restores the echo at the end of this block
    if (terminal) {
      std::cerr << prompt << std::flush;  // only once echo is off: nothing typed is shown
    }
    got = static_cast<bool>(std::getline(std::cin, line));
  }
  if (terminal) {
    std::cerr << "\n";
  }
  if (!got) {
    return make_error(Errc::kInvalidArgument, "no secret given on standard input");
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  if (line.empty()) {
    return make_error(Errc::kInvalidArgument, "the secret must not be empty");
  }
  return line;
}

}  // namespace sqlpost
