#include "transport/imap_idle.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "platform/net.h"
#include "transport/curl_server.h"

namespace sqlpost::transport {
namespace {

constexpr std::size_t kReadChunk = 4096;

// "* <digits> EXISTS", case-insensitively for the keyword.
bool is_exists(std::string_view line) {
  if (!line.starts_with("* ")) {
    return false;
  }
  std::size_t at = 2;
  while (at < line.size() && line[at] >= '0' && line[at] <= '9') {
    ++at;
  }
  if (at == 2 || at >= line.size() || line[at] != ' ') {
    return false;
  }
  std::string word(line.substr(at + 1));
  std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  });
  return word == "EXISTS";
}

// The mailbox as an IMAP quoted string.
std::string quoted(std::string_view box) {
  std::string out = "\"";
  for (const char c : box) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

bool offers_idle(const std::vector<std::string>& untagged) {
  return std::any_of(untagged.begin(), untagged.end(), [](const std::string& line) {
    return line.starts_with("* CAPABILITY ") && (line + " ").find(" IDLE ") != std::string::npos;
  });
}

}  // namespace

Result<std::unique_ptr<ImapIdle>> ImapIdle::open(const ImapConfig& config) {
  SQLPOST_TRY(check_server(config.server));
  SQLPOST_TRY_ASSIGN(auto easy, CurlEasy::create());
  auto idle = std::make_unique<ImapIdle>(config, std::move(easy));
  SQLPOST_TRY(idle->login());
  return idle;
}

ImapIdle::ImapIdle(ImapConfig config, std::unique_ptr<CurlEasy> easy)
    : config_(std::move(config)), easy_(std::move(easy)) {}

// DONE ends a running IDLE (best effort, nothing is read: libcurl's LOGOUT at
// cleanup skips the reply, whose tag is not its own).
ImapIdle::~ImapIdle() {
  if (idling_) {
    std::size_t sent = 0;
    (void)easy_->send_raw("DONE\r\n", sent);
  }
}

Error ImapIdle::failure(Errc code, const std::string& why) const {
  return make_error(code, "IMAP IDLE in " + config_.mailbox + " at " +
                              server_name(MailProtocol::kImap, config_.server) + ": " + why);
}

ImapIdle::Clock::time_point ImapIdle::reply_deadline() const {
  return Clock::now() + config_.server.response_timeout;
}

Result<> ImapIdle::login() {
  apply_server(*easy_, MailProtocol::kImap, config_.server);
  const std::string url = server_url(MailProtocol::kImap, config_.server) + "/";
  easy_->set(CURLOPT_URL, url.c_str());
  easy_->set(CURLOPT_CONNECT_ONLY, 1L);
  if (const CURLcode rc = easy_->perform(); rc != CURLE_OK) {
    return mail_error(*easy_, rc,
                      "IMAP IDLE login at " + server_name(MailProtocol::kImap, config_.server));
  }
  SQLPOST_TRY_ASSIGN(const auto capabilities, command("CAPABILITY"));
  if (!offers_idle(capabilities)) {
    return failure(Errc::kUnsupported, "the server does not offer IDLE");
  }
  SQLPOST_TRY(command("EXAMINE " + quoted(config_.mailbox)));
  exists_seen_ = false;  // EXAMINE's own "* N EXISTS" counts what is there already
  return success();
}

Result<> ImapIdle::send_line(const std::string& line) {
  const std::string data = line + "\r\n";
  std::size_t done = 0;
  const auto deadline = reply_deadline();
  while (done < data.size()) {
    std::size_t sent = 0;
    const CURLcode rc = easy_->send_raw(std::string_view(data).substr(done), sent);
    done += sent;
    if (rc == CURLE_AGAIN) {
      if (Clock::now() >= deadline) {
        return failure(Errc::kTransient, "timed out sending a command");
      }
      SQLPOST_TRY(platform::wait_socket(static_cast<std::uintptr_t>(easy_->active_socket()), true,
                                        std::chrono::milliseconds(100)));
    } else if (rc != CURLE_OK) {
      return failure(Errc::kTransient, std::string("sending: ") + curl_easy_strerror(rc));
    }
  }
  return success();
}

Result<std::optional<std::string>> ImapIdle::next_line(Clock::time_point deadline) {
  std::array<char, kReadChunk> chunk{};
  for (;;) {
    if (const std::size_t end = buffer_.find("\r\n"); end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return std::optional<std::string>(std::move(line));
    }
    if (buffer_.size() > kMaxLineBytes) {
      return failure(Errc::kCorruption,
                     "a reply line is longer than " + std::to_string(kMaxLineBytes) + " bytes");
    }
    std::size_t received = 0;
    const CURLcode rc = easy_->recv_raw(chunk.data(), chunk.size(), received);
    if (rc == CURLE_OK && received == 0) {
      return failure(Errc::kTransient, "the server closed the connection");
    }
    if (rc == CURLE_OK) {
      buffer_.append(chunk.data(), received);
      continue;
    }
    if (rc != CURLE_AGAIN) {
      return failure(Errc::kTransient, std::string("reading: ") + curl_easy_strerror(rc));
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      return std::optional<std::string>();
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    SQLPOST_TRY_ASSIGN(
        const bool ready,
        platform::wait_socket(static_cast<std::uintptr_t>(easy_->active_socket()), false, left));
    if (!ready) {
      return std::optional<std::string>();  // timed out, or a signal: the caller looks
    }
  }
}

Result<std::vector<std::string>> ImapIdle::command(const std::string& text) {
  const std::string tag = "p" + std::to_string(++tag_);
  SQLPOST_TRY(send_line(tag + " " + text));
  std::vector<std::string> untagged;
  const auto deadline = reply_deadline();
  for (;;) {
    SQLPOST_TRY_ASSIGN(auto line, next_line(deadline));
    if (!line && Clock::now() >= deadline) {
      return failure(Errc::kTransient, "timed out waiting for the reply to " + text);
    }
    if (!line) {
      continue;
    }
    if (line->starts_with(tag + " OK")) {
      return untagged;
    }
    if (line->starts_with(tag + " ")) {
      return failure(Errc::kConfig, text + " refused: " + line->substr(0, 300));
    }
    exists_seen_ = exists_seen_ || is_exists(*line);
    if (untagged.size() < 1000) {
      untagged.push_back(std::move(*line));
    }
  }
}

Result<> ImapIdle::start_idle() {
  const std::string tag = "p" + std::to_string(++tag_);
  SQLPOST_TRY(send_line(tag + " IDLE"));
  const auto deadline = reply_deadline();
  for (;;) {
    SQLPOST_TRY_ASSIGN(auto line, next_line(deadline));
    if (!line && Clock::now() >= deadline) {
      return failure(Errc::kTransient, "timed out waiting for the IDLE continuation");
    }
    if (line && line->starts_with("+")) {
      idling_ = true;
      idle_since_ = Clock::now();
      return success();
    }
    if (line && line->starts_with(tag + " ")) {
      return failure(Errc::kUnsupported, "IDLE refused: " + line->substr(0, 300));
    }
    exists_seen_ = exists_seen_ || (line && is_exists(*line));
  }
}

// DONE ends the IDLE command: its tagged reply follows.
Result<> ImapIdle::end_idle(Clock::time_point deadline) {
  idling_ = false;
  SQLPOST_TRY(send_line("DONE"));
  const std::string tag = "p" + std::to_string(tag_) + " ";
  for (;;) {
    SQLPOST_TRY_ASSIGN(auto line, next_line(deadline));
    if (!line && Clock::now() >= deadline) {
      return failure(Errc::kTransient, "timed out waiting for the end of IDLE");
    }
    if (line && line->starts_with(tag)) {
      return success();
    }
    exists_seen_ = exists_seen_ || (line && is_exists(*line));
  }
}

Result<bool> ImapIdle::wait(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (idling_ && Clock::now() - idle_since_ >= kReidle) {
    SQLPOST_TRY(end_idle(reply_deadline()));
  }
  if (!idling_ && !exists_seen_) {
    SQLPOST_TRY(start_idle());
  }
  while (!exists_seen_) {
    SQLPOST_TRY_ASSIGN(auto line, next_line(deadline));
    if (!line) {
      return false;
    }
    exists_seen_ = is_exists(*line);
  }
  if (idling_) {
    SQLPOST_TRY(end_idle(reply_deadline()));
  }
  exists_seen_ = false;
  return true;
}

}  // namespace sqlpost::transport
