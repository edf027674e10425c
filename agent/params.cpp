#include "agent/params.h"

#include <array>
#include <charconv>
#include <optional>

#include "platform/dns.h"
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

// The whole-number parameters and their ranges.
struct IntRange {
  std::string_view key;
  std::int64_t min;
  std::int64_t max;
};

std::optional<IntRange> int_range(std::string_view key) {
  constexpr std::int64_t kYear = 365LL * 24 * 3600;
  static constexpr std::array<IntRange, 23> kRanges = {{
      {"keys.slot", 0, 4095},
      {"smtp.port", 1, 65535},
      {"smtp.mx_port", 1, 65535},
      {"pop3.port", 1, 65535},
      {"imap.port", 1, 65535},
      {"ftp.port", 1, 65535},
      {"timeout", 1, 3600},
      {"lock_wait", 1, 3600},
      {"max_message_bytes", 4096, 100'000'000},
      {"limits.max_changes", 1, 100'000'000},
      {"limits.max_value_bytes", 1024, 1'000'000'000},
      {"limits.max_decode_bytes", 32LL << 20, 64LL << 30},
      {"resend_timeout", 0, kYear},
      {"gap_patience", 0, kYear},
      {"resend_interval", 0, kYear},
      {"log_retention", 0, kYear},
      {"alert.silent", 0, kYear},
      {"alert.unacknowledged", 0, kYear},
      {"alert.rejected", 0, kYear},
      {"alert.bounced", 0, kYear},
      {"alert.log_rows", 0, 10'000'000'000LL},
      {"history_retention", 3600, 10 * 366LL * 24 * 3600},
      {"stats_retention", 3600, 10 * 366LL * 24 * 3600},
  }};
  for (const auto& range : kRanges) {
    if (range.key == key) {
      return range;
    }
  }
  return std::nullopt;
}

// A host or domain name: 1..253 of letters, digits, '.' and '-'.
Result<> require_host_name(std::string_view key, std::string_view value) {
  const bool ok = !value.empty() && value.size() <= 253 &&
                  value.find_first_not_of(
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789.-") == std::string_view::npos;
  if (!ok) {
    return make_error(Errc::kInvalidArgument,
                      std::string(key) + " must be a host name (letters, digits, '.', '-')");
  }
  return success();
}

// A comma-separated list of plain addresses (local@domain, no spaces or line breaks).
Result<> require_addresses(std::string_view key, std::string_view value) {
  std::size_t start = 0;
  while (start <= value.size()) {
    const std::size_t comma = value.find(',', start);
    std::string_view one = value.substr(start, comma - start);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
    const std::size_t at = one.find('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == one.size() ||
        one.find_first_of(" \t\r\n<>") != std::string_view::npos) {
      return make_error(Errc::kInvalidArgument,
                        std::string(key) + ": '" + std::string(one) +
                            "' is not an e-mail address (list them with commas)");
    }
    if (comma == std::string_view::npos) {
      return success();
    }
    start = comma + 1;
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

// One table of every control parameter: its length is the number of parameters.
// NOLINTNEXTLINE(readability-function-size)
const std::vector<ParamSpec>& parameter_specs() {
  static const std::vector<ParamSpec> specs = {
      {"link",
       "how mail travels: file (shared folder), ftp (folders on an FTP server) or smtp "
       "(with receive=pop3|imap)"},
      {"file.dir", "file link: the shared root folder (one Maildir per address)"},
      {"max_message_bytes", "largest e-mail sqlpost writes (default 1000000)", false, "1000000"},
      {"resend_timeout", "seconds before an unacknowledged message is sent again (3600)", false,
       "3600"},
      {"gap_patience", "seconds to wait for a missing message before asking again (300)", false,
       "300"},
      {"resend_interval", "least seconds between two resend requests to a partner (600)", false,
       "600"},
      {"log_retention", "seconds acknowledged changes stay in the log for rescan (604800)", false,
       "604800"},
      {"history_retention", "seconds runs and the message log are kept (7776000 = 90 days)", false,
       "7776000"},
      {"stats_retention", "seconds statistics per partner per day are kept (34560000 = 400 days)",
       false, "34560000"},
      {"alert.silent", "seconds a partner may send nothing before an alert (0: off)", false,
       "86400"},
      {"alert.unacknowledged",
       "seconds a message may wait for its acknowledgement before an alert (0: off)", false,
       "86400"},
      {"alert.stopped", "yes or no: alert while applying a partner's messages is stopped", false,
       "yes"},
      {"alert.rejected", "alert for this many seconds after mail was rejected (0: off)", false,
       "86400"},
      {"alert.bounced", "alert for this many seconds after a part to a partner bounced (0: off)",
       false, "86400"},
      {"alert.log_rows",
       "changes kept in the change log before an alert (it grows while a partner does not "
       "acknowledge; 0: off)",
       false, "10000000"},
      {"alert.mailto",
       "addresses (comma-separated) mailed when an alert is raised and when it clears "
       "(needs link=smtp)"},
      {"alert.hook",
       "command run (through the shell) when an alert is raised or clears; SQLPOST_ALERT_STATE, "
       "_KIND, _PARTNER, _TEXT and SQLPOST_SITE in its environment"},
      {"push",
       "yes (default) or no: with run --every, start a pass at once when mail arrives (IMAP "
       "IDLE) or an application commits (data_version, looked at every second)",
       false, "yes"},
      {"lock_wait", "seconds a run waits for the database write lock per step (10)", false, "10"},
      {"limits.max_changes", "most changes one received message may carry (50000000)", false,
       "1000000"},
      {"limits.max_value_bytes",
       "largest value (TEXT/BLOB) a received message may carry (67108864)", false, "67108864"},
      {"limits.max_decode_bytes", "most memory decoding one received message may take (2147483648)",
       false, "2147483648"},
      {"ftp.host", "FTP server holding every site's folder"},
      {"ftp.port", "FTP port (default 21 for starttls/none, 990 for tls)"},
      {"ftp.security",
       "starttls (default: explicit TLS, AUTH TLS, required), tls (implicit) or "
       "none"},
      {"ftp.user", "FTP user"},
      {"ftp.password", "FTP password; set with --secret", true},
      {"ftp.password_file", "file (mode 0600) holding the FTP password"},
      {"ftp.password_env", "environment variable holding the FTP password"},
      {"ftp.dir",
       "folder on the FTP server holding one folder per address (default: the login "
       "folder; '/...' is absolute)"},
      {"max_message_bytes", "largest e-mail sqlpost writes (default 1000000)"},
      {"resend_timeout", "seconds before an unacknowledged message is sent again (3600)"},
      {"gap_patience", "seconds to wait for a missing message before asking again (300)"},
      {"resend_interval", "least seconds between two resend requests to a partner (600)"},
      {"log_retention", "seconds acknowledged changes stay in the log for rescan (604800)"},
      {"address", "this site's own e-mail address (where partners send its mail)"},
      {"smtp.mode",
       "relay (default: every mail through smtp.host) or direct (to the MX servers of each "
       "recipient's domain, looked up in DNS)",
       false, "relay"},
      {"smtp.host", "SMTP server for outgoing mail (smtp.mode=relay)"},
      {"smtp.dns_server",
       "smtp.mode=direct: the DNS server to ask for MX records, a.b.c.d or a.b.c.d:port "
       "(default: the system's resolver)",
       false, "the system resolver"},
      {"smtp.mx_port", "smtp.mode=direct: the port of the MX servers (default 25)", false, "25"},
      {"smtp.port", "SMTP port (default 587 for starttls, 465 for tls, 25 for none)", false,
       "587 for starttls, 465 for tls, 25 for none"},
      {"smtp.security", "starttls (default, required), tls (implicit) or none", false, "starttls"},
      {"smtp.user", "SMTP AUTH user (default: the pop3/imap user)", false, "the pop3/imap user"},
      {"smtp.password", "SMTP password (default: the pop3/imap one); set with --secret", true},
      {"smtp.password_file", "file (mode 0600) holding the SMTP password"},
      {"smtp.password_env", "environment variable holding the SMTP password"},
      {"smtp.etrn",
       "before receiving, ask the SMTP server to deliver the mail it queued for this domain "
       "(ETRN, for sites that are not always online)"},
      {"smtp.pop_before_smtp",
       "yes or no (default): log into the pop3/imap mailbox before every connection to the SMTP "
       "server (POP-before-SMTP), also in runs that only send, check and alert mail",
       false, "no"},
      {"smtp.local_host",
       "EHLO name announced to the SMTP server (default: this machine's host "
       "name)"},
      {"smtp.auth",
       "SASL mechanism for SMTP AUTH: PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5, NTLM, EXTERNAL, "
       "XOAUTH2 or OAUTHBEARER (default: the best both sides offer)"},
      {"smtp.oauth2_token_command",
       "command printing an OAuth2 access token for SMTP AUTH, run once per session "
       "(XOAUTH2/OAUTHBEARER; default: the pop3/imap one when smtp has no password of its own)"},
      {"receive", "how this site's mailbox is read: pop3 (default) or imap", false, "pop3"},
      {"pop3.host", "POP3 server of this site's mailbox"},
      {"pop3.port", "POP3 port (default 110 for starttls/none, 995 for tls)", false,
       "110 for starttls and none, 995 for tls"},
      {"pop3.security", "starttls (default, required), tls (implicit) or none", false, "starttls"},
      {"pop3.user", "POP3 user"},
      {"pop3.password", "POP3 password; set with --secret", true},
      {"pop3.password_file", "file (mode 0600) holding the POP3 password"},
      {"pop3.password_env", "environment variable holding the POP3 password"},
      {"pop3.auth", "SASL mechanism for the POP3 login (as smtp.auth)"},
      {"pop3.oauth2_token_command",
       "command printing an OAuth2 access token for the POP3 login (instead of a password), run "
       "once per session"},
      {"imap.host", "IMAP server of this site's mailbox"},
      {"imap.port", "IMAP port (default 143 for starttls/none, 993 for tls)", false,
       "143 for starttls and none, 993 for tls"},
      {"imap.security", "starttls (default, required), tls (implicit) or none", false, "starttls"},
      {"imap.user", "IMAP user"},
      {"imap.password", "IMAP password; set with --secret", true},
      {"imap.password_file", "file (mode 0600) holding the IMAP password"},
      {"imap.password_env", "environment variable holding the IMAP password"},
      {"imap.auth", "SASL mechanism for the IMAP login (as smtp.auth)"},
      {"imap.oauth2_token_command",
       "command printing an OAuth2 access token for the IMAP login (instead of a password), run "
       "once per session"},
      {"imap.mailbox", "IMAP folder to read (default INBOX)", false, "INBOX"},
      {"tls.ca_file", "PEM file of the CA that signed the servers' certificates", false,
       "the system certificate store"},
      {"tls.verify", "yes (default) or no: check the servers' certificates", false, "yes"},
      {"timeout", "seconds to wait for a mail server before giving up (default 60)", false, "60"},
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
    return require_one_of(key, value, {"file", "ftp", "smtp"});
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
  if (key == "smtp.mode") {
    return require_one_of(key, value, {"relay", "direct"});
  }
  if (key == "smtp.dns_server") {
    if (auto server = platform::parse_dns_server(value); !server.ok()) {
      return make_error(Errc::kInvalidArgument, std::string(key) + ": " + server.error().message);
    }
    return success();
  }
  if (key == "smtp.security" || key == "pop3.security" || key == "imap.security" ||
      key == "ftp.security") {
    return require_one_of(key, value, {"starttls", "tls", "none"});
  }
  if (key == "smtp.auth" || key == "pop3.auth" || key == "imap.auth") {
    return require_one_of(
        key, value,
        {"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "NTLM", "EXTERNAL", "XOAUTH2", "OAUTHBEARER"});
  }
  if (key == "smtp.local_host" || key == "smtp.etrn") {
    return require_host_name(key, value);
  }
  if (key == "keys") {
    return require_one_of(key, value, {"ranges"});
  }
  if (key == "tls.verify" || key == "alert.stopped" || key == "push" ||
      key == "smtp.pop_before_smtp") {
    return require_one_of(key, value, {"yes", "no"});
  }
  if (key == "alert.mailto") {
    return require_addresses(key, value);
  }
  if (const auto range = int_range(key)) {
    return require_int(key, value, range->min, range->max);
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
