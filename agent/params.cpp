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
