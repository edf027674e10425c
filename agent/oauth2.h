// sqlpost/agent/oauth2.h — OAuth2 access tokens for the mail logins (Microsoft 365,
// Gmail), from a command the operator configures (`*.oauth2_token_command`).
//
// Contract: run_token_command() runs `command` through the shell (platform seam:
// capture_shell_command, stdin closed, at most kTokenCommandTimeout) and returns its
// standard output with surrounding white space removed: the access token. It is
// refused (kConfig, the message names `key`) when the command cannot be started,
// times out, exits non-zero (the message has the exit status and the tail of its
// stderr, control characters replaced), prints nothing, prints more than
// kMaxTokenBytes, or prints a control character or space inside the token. No message
// ever holds the token or any of the command's standard output. The caller runs it
// once per session set-up and keeps the token only in memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace sqlpost {

inline constexpr std::size_t kMaxTokenBytes = std::size_t{16} * 1024;
inline constexpr std::chrono::seconds kTokenCommandTimeout{60};

Result<std::string> run_token_command(std::string_view key, const std::string& command);

// The token as printed by a command: trimmed and checked as above (the command's
// outcome aside). kConfig naming `key` when refused.
Result<std::string> token_from_output(std::string_view key, std::string_view output,
                                      bool truncated);

}  // namespace sqlpost
