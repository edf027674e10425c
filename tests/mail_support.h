// sqlpost/tests/mail_support.h — what the tests against the real mail servers of
// tools/mailstack share: the stack's settings from its mailstack.env (in the
// environment) and whether the stack is there at all.
#pragma once

#include <map>
#include <string>

namespace sqlpost::test {

// The environment variable's value, "" when unset.
std::string env(const char* name);

// login -> secret (password or OAuth2 token) from a "login:secret:address ..."
// list in the environment variable `list` (MAILSTACK_USERS, MAILSTACK_OAUTH_USERS).
std::map<std::string, std::string> mailstack_secrets(const char* list);

// True when the stack's settings are there (`present`). Otherwise the test is
// skipped with a message when SQLPOST_SKIP_MAIL=1, and fails saying how to start
// the stack (`missing` names what is missing) when not.
bool mailstack_ready(bool present, const std::string& missing);

}  // namespace sqlpost::test
