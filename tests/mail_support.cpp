#include "tests/mail_support.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>

namespace sqlpost::test {

std::string env(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): tests
  return value != nullptr ? value : "";
}

std::map<std::string, std::string> mailstack_secrets(const char* list) {
  std::map<std::string, std::string> secrets;
  std::istringstream users(env(list));
  std::string entry;
  while (users >> entry) {
    const auto first = entry.find(':');
    const auto second = entry.find(':', first + 1);
    secrets[entry.substr(0, first)] = entry.substr(first + 1, second - first - 1);
  }
  return secrets;
}

bool mailstack_ready(bool present, const std::string& missing) {
  if (present) {
    return true;
  }
  if (env("SQLPOST_SKIP_MAIL") == "1") {
    MESSAGE("SQLPOST_SKIP_MAIL=1: mail server tests skipped");
    return false;
  }
  FAIL(missing << " not set: start tools/mailstack/start.sh and load its mailstack.env, or set "
                  "SQLPOST_SKIP_MAIL=1");
  return false;
}

}  // namespace sqlpost::test
