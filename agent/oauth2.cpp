#include "agent/oauth2.h"

#include <algorithm>

#include "platform/process.h"

namespace sqlpost {
namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool control_or_space(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// The tail of the command's stderr, one line, printable ASCII only.
std::string printable_tail(std::string_view text) {
  while (!text.empty() && blank(text.back())) {
    text.remove_suffix(1);
  }
  constexpr std::size_t kShown = 300;
  if (text.size() > kShown) {
    text.remove_prefix(text.size() - kShown);
  }
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : ' ');
  }
  return out;
}

Error refused(std::string_view key, const std::string& why) {
  return make_error(Errc::kConfig, std::string(key) + ": " + why);
}

}  // namespace

Result<std::string> token_from_output(std::string_view key, std::string_view output,
                                      bool truncated) {
  if (truncated || output.size() > kMaxTokenBytes + 2) {
    return refused(key, "the command printed more than " + std::to_string(kMaxTokenBytes) +
                            " bytes (kMaxTokenBytes); it must print only the access token");
  }
  while (!output.empty() && blank(output.front())) {
    output.remove_prefix(1);
  }
  while (!output.empty() && blank(output.back())) {
    output.remove_suffix(1);
  }
  if (output.empty()) {
    return refused(key, "the command printed no access token");
  }
  if (output.size() > kMaxTokenBytes) {
    return refused(key, "the access token is longer than " + std::to_string(kMaxTokenBytes) +
                            " bytes (kMaxTokenBytes)");
  }
  if (std::any_of(output.begin(), output.end(), control_or_space)) {
    return refused(key,
                   "the command's output holds a space, line break or control character; it "
                   "must print only the access token (not shown here)");
  }
  return std::string(output);
}

Result<std::string> run_token_command(std::string_view key, const std::string& command) {
  auto ran = platform::capture_shell_command(command, kMaxTokenBytes + 2, kTokenCommandTimeout);
  if (!ran.ok()) {
    return refused(key, "cannot run the token command: " + ran.error().message);
  }
  const platform::CommandOutput& result = ran.value();
  if (result.timed_out) {
    return refused(key, "the token command did not finish within " +
                            std::to_string(kTokenCommandTimeout.count()) + " s and was stopped");
  }
  if (result.exit_status != 0) {
    const std::string tail = printable_tail(result.err_tail);
    return refused(key, "the token command failed (exit status " +
                            std::to_string(result.exit_status) + ")" +
                            (tail.empty() ? std::string() : ": " + tail));
  }
  return token_from_output(key, result.out, result.truncated);
}

}  // namespace sqlpost
