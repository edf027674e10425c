// sqlpost/transport/imap_idle.h — IMAP IDLE (RFC 2177): a connection that waits for
// new mail in the site's mailbox, for a long-running agent.
//
// Contract: libcurl has no IDLE, so open() connects and logs in with libcurl
// (CURLOPT_CONNECT_ONLY: the same TLS, verification and SASL as ImapLink, from the
// same ImapConfig) and then speaks IMAP itself over that connection (CurlEasy's
// send_raw/recv_raw): CAPABILITY (kUnsupported when the server lacks IDLE), EXAMINE
// of the mailbox (read-only: nothing in it changes), IDLE. wait(timeout) blocks, on
// the socket (platform::wait_socket), at most `timeout`; true when the server sent an
// untagged "* N EXISTS" (mail arrived; the IDLE is ended with DONE and started again
// by the next wait()), false when the time passed. An IDLE older than kReidle is
// ended and re-issued (servers may drop an IDLE after 30 minutes). Every line read is
// bounded by kMaxLineBytes (longer: kCorruption); each command's reply must come
// within the server's response_timeout (else kTransient). A closed connection or any
// other failure is an error; the object is then unusable (open another). Errors
// name the server and mailbox; passwords and tokens never appear in them. One thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_handle.h"
#include "transport/curl_imap.h"

namespace sqlpost::transport {

class ImapIdle {
 public:
  static constexpr std::size_t kMaxLineBytes = std::size_t{64} * 1024;
  static constexpr std::chrono::minutes kReidle{25};

  static Result<std::unique_ptr<ImapIdle>> open(const ImapConfig& config);

  Result<bool> wait(std::chrono::milliseconds timeout);

  ImapIdle(ImapConfig config, std::unique_ptr<CurlEasy> easy);  // use open()
  ImapIdle(const ImapIdle&) = delete;
  ImapIdle& operator=(const ImapIdle&) = delete;
  ImapIdle(ImapIdle&&) = delete;
  ImapIdle& operator=(ImapIdle&&) = delete;
  ~ImapIdle();  // ends a running IDLE (DONE), then libcurl logs out; best effort

 private:
  using Clock = std::chrono::steady_clock;
  Result<> login();
  Result<> start_idle();
  Result<> end_idle(Clock::time_point deadline);
  Result<> send_line(const std::string& line);
  // The next line (without CR LF); an empty optional when `deadline` passed first.
  Result<std::optional<std::string>> next_line(Clock::time_point deadline);
  // Sends "<tag> <text>" and reads up to the tagged reply; the untagged lines before it.
  Result<std::vector<std::string>> command(const std::string& text);
  [[nodiscard]] Error failure(Errc code, const std::string& why) const;
  [[nodiscard]] Clock::time_point reply_deadline() const;

  ImapConfig config_;
  std::unique_ptr<CurlEasy> easy_;
  std::string buffer_;
  unsigned tag_ = 0;
  bool idling_ = false;
  bool exists_seen_ = false;
  Clock::time_point idle_since_{};
};

}  // namespace sqlpost::transport
