#include "agent/params.h"

#include <charconv>

#include "schema/metadata.h"

namespace sqlpost {
namespace {

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return v;
}

Result<> require_int(std::string_view key, std::string_view value, std::int64_t min,
                     std::int64_t max) {
  const auto v = parse_int(value);
  if (!v || *v < min || *v > max) {
    return make_error(Errc::kInvalidArgument, std::string(key) + " must be a whole number from " +
                                                  std::to_string(min) + " to " +
                                                  std::to_string(max));
  }
  return success();
}

Result<> require_one_of(std::string_view key, std::string_view value,
                        std::initializer_list<std::string_view> allowed) {
  std::string list;
  for (const auto a : allowed) {
    if (value == a) {
      return success();
    }
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  return make_error(Errc::kInvalidArgument, std::string(key) + " must be one of: " + list);
}

}  // namespace

const std::vector<ParamSpec>& parameter_specs() {
  static const std::vector<ParamSpec> specs = {
      {"link", "how mail travels: file (shared folder) or smtp (with receive=pop3|imap)"},
      {"file.dir", "file link: the shared root folder (one Maildir per address)"},
      {"max_message_bytes", "largest e-mail sqlpost writes (default 1000000)"},
      {"resend_timeout", "seconds before an unacknowledged message is sent again (3600)"},
      {"gap_patience", "seconds to wait for a missing message before asking again (300)"},
      {"resend_interval", "least seconds between two resend requests to a partner (600)"},
      {"log_retention", "seconds acknowledged changes stay in the log for rescan (604800)"},
      {"address", "this site's own e-mail address (where partners send its mail)"},
      {"smtp.host", "SMTP server for outgoing mail"},
      {"smtp.port", "SMTP port (default 587 for starttls, 465 for tls, 25 for none)"},
      {"smtp.security", "starttls (default, required), tls (implicit) or none"},
      {"smtp.user", "SMTP AUTH user (default: the pop3/imap user)"},
      {"smtp.password", "SMTP password (default: the pop3/imap one); set with --secret", true},
      {"smtp.password_file", "file (mode 0600) holding the SMTP password"},
      {"smtp.password_env", "environment variable holding the SMTP password"},
      {"receive", "how this site's mailbox is read: pop3 (default) or imap"},
      {"pop3.host", "POP3 server of this site's mailbox"},
      {"pop3.port", "POP3 port (default 110 for starttls/none, 995 for tls)"},
      {"pop3.security", "starttls (default, required), tls (implicit) or none"},
      {"pop3.user", "POP3 user"},
      {"pop3.password", "POP3 password; set with --secret", true},
      {"pop3.password_file", "file (mode 0600) holding the POP3 password"},
      {"pop3.password_env", "environment variable holding the POP3 password"},
      {"imap.host", "IMAP server of this site's mailbox"},
      {"imap.port", "IMAP port (default 143 for starttls/none, 993 for tls)"},
      {"imap.security", "starttls (default, required), tls (implicit) or none"},
      {"imap.user", "IMAP user"},
      {"imap.password", "IMAP password; set with --secret", true},
      {"imap.password_file", "file (mode 0600) holding the IMAP password"},
      {"imap.password_env", "environment variable holding the IMAP password"},
      {"imap.mailbox", "IMAP folder to read (default INBOX)"},
      {"tls.ca_file", "PEM file of the CA that signed the servers' certificates"},
      {"tls.verify", "yes (default) or no: check the servers' certificates"},
      {"timeout", "seconds to wait for a mail server before giving up (default 60)"},
      {"keys", "ranges: site-unique keys for AUTOINCREMENT tables (docs/keys.md)"},
      {"keys.slot", "this site's key slot, 0..4095 (set by extract; docs/keys.md)"},
  };
  return specs;
}

const ParamSpec* find_parameter(std::string_view key) {
  for (const auto& spec : parameter_specs()) {
    if (spec.key == key) {
      return &spec;
    }
  }
  return nullptr;
}

Result<> validate_parameter(std::string_view key, std::string_view value) {
  if (find_parameter(key) == nullptr) {
    return make_error(Errc::kInvalidArgument,
                      "unknown parameter '" + std::string(key) + "' (see 'sqlpost config --help')");
  }
  if (key == "link") {
    return require_one_of(key, value, {"file", "smtp"});
  }
  if (const ParamSpec* spec = find_parameter(key); spec != nullptr && spec->secret) {
    return make_error(Errc::kInvalidArgument,
                      std::string(key) +
                          " is a secret and is never given on the command line (it would show in "
                          "ps and the shell history); use: sqlpost config DB --secret " +
                          std::string(key) + ", or " + std::string(key) + "_file=PATH, or " +
                          std::string(key) + "_env=VARIABLE");
  }
  if (key == "receive") {
    return require_one_of(key, value, {"pop3", "imap"});
  }
  if (key == "smtp.security" || key == "pop3.security" || key == "imap.security") {
    return require_one_of(key, value, {"starttls", "tls", "none"});
  }
  if (key == "keys") {
    return require_one_of(key, value, {"ranges"});
  }
  if (key == "keys.slot") {
    return require_int(key, value, 0, 4095);
  }
  if (key == "tls.verify") {
    return require_one_of(key, value, {"yes", "no"});
  }
  if (key == "smtp.port" || key == "pop3.port" || key == "imap.port") {
    return require_int(key, value, 1, 65535);
  }
  if (key == "timeout") {
    return require_int(key, value, 1, 3600);
  }
  if (key == "max_message_bytes") {
    return require_int(key, value, 4096, 100'000'000);
  }
  if (key == "resend_timeout" || key == "gap_patience" || key == "resend_interval" ||
      key == "log_retention") {
    return require_int(key, value, 0, 365LL * 24 * 3600);
  }
  if (value.empty()) {
    return make_error(Errc::kInvalidArgument, std::string(key) + " must not be empty");
  }
  return success();
}

Result<std::int64_t> int_parameter(Database& db, std::string_view key, std::int64_t fallback) {
  SQLPOST_TRY_ASSIGN(const auto value, get_config(db, key));
  if (!value) {
    return fallback;
  }
  const auto v = parse_int(*value);
  if (!v) {
    return make_error(Errc::kConfig, std::string(key) + " holds '" + *value +
                                         "', not a number; fix it with sqlpost config");
  }
  return *v;
}

std::string masked(const ParamSpec& spec, const std::string& value) {
  return spec.secret ? "********" : value;
}

}  // namespace sqlpost
