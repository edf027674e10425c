// sqlpost/agent/params.h — the control parameters a site keeps in its database.
//
// Contract: every key `sqlpost config` accepts is listed here with a check of
// its value; unknown keys and bad values are refused with a one-line message.
// Secret keys are never printed (masked as ********).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schema/db.h"

namespace sqlpost {

struct ParamSpec {
  std::string_view key;
  std::string_view help;
  bool secret = false;
  std::string_view default_value{};  // in force when the key is not set (config --all)
};

const std::vector<ParamSpec>& parameter_specs();
const ParamSpec* find_parameter(std::string_view key);
Result<> validate_parameter(std::string_view key, std::string_view value);

// Reads an integer parameter with a default.
Result<std::int64_t> int_parameter(Database& db, std::string_view key, std::int64_t fallback);

std::string masked(const ParamSpec& spec, const std::string& value);

}  // namespace sqlpost
