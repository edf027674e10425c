// sqlpost/transport/curl_handle.h — the one owner of every libcurl handle.
//
// Contract: CurlEasy owns exactly one CURL* (curl_easy_cleanup in the destructor,
// which also closes a cached connection politely: SMTP/POP3 QUIT, IMAP LOGOUT).
// CurlSlist owns exactly one curl_slist*. Neither can be copied or moved, so the
// callback pointers CurlEasy hands to libcurl stay valid. A CurlEasy captures, per
// perform(): the body (write callback) up to a byte limit — beyond it the write
// callback aborts the transfer and overflowed() is true — the server's reply lines
// (header callback, bounded, the last kMaxReplyBytes kept) and libcurl's error
// buffer. set() records the first failing curl_easy_setopt; perform() then fails
// with CURLE_BAD_FUNCTION_ARGUMENT without touching the network. Passwords given to
// set() or set_bearer() never appear in reply_text() or error_text(). send_raw(),
// recv_raw() and active_socket() serve a CONNECT_ONLY connection (IMAP IDLE). Not
// thread-safe: one thread per handle. curl_global_init runs once per process (curl_global()).
#pragma once

#include <curl/curl.h>

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "transport/limits.h"

namespace sqlpost::transport {

// Initialises libcurl once (thread-safe). kInternal if curl_global_init fails.
Result<> curl_global();

class CurlSlist {
 public:
  CurlSlist() = default;
  CurlSlist(const CurlSlist&) = delete;
  CurlSlist& operator=(const CurlSlist&) = delete;
  CurlSlist(CurlSlist&&) = delete;
  CurlSlist& operator=(CurlSlist&&) = delete;
  ~CurlSlist() = default;

  // kInternal when libcurl cannot allocate.
  Result<> append(const std::string& item);
  [[nodiscard]] curl_slist* get() const { return list_.get(); }

 private:
  struct Free {
    void operator()(curl_slist* list) const { curl_slist_free_all(list); }
  };
  std::unique_ptr<curl_slist, Free> list_;
};

class CurlEasy {
 public:
  // Reply lines kept from the header callback (the most recent ones).
  static constexpr std::size_t kMaxReplyBytes = std::size_t{64} * 1024;
  // Called with every libcurl debug record (CURLOPT_DEBUGFUNCTION) when set.
  using Trace = std::function<void(curl_infotype, std::string_view)>;

  // kInternal when curl_easy_init fails.
  static Result<std::unique_ptr<CurlEasy>> create();

 private:
  struct Token {
    explicit Token() = default;
  };

 public:
  explicit CurlEasy(Token /*only create()*/) {}

  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;
  CurlEasy(CurlEasy&&) = delete;
  CurlEasy& operator=(CurlEasy&&) = delete;
  ~CurlEasy() = default;

  template <class T>
  void set(CURLoption option, T value) {
    if (curl_easy_setopt(handle_.get(), option, value) != CURLE_OK && setopt_ok_) {
      setopt_ok_ = false;
      bad_option_ = static_cast<int>(option);
    }
  }
  // An OAuth2 access token for the login (CURLOPT_XOAUTH2_BEARER; libcurl copies it);
  // `source` names where it came from, for messages (may be empty).
  void set_bearer(const std::string& token, const std::string& source) {
    set(CURLOPT_XOAUTH2_BEARER, token.c_str());
    uses_bearer_ = true;
    bearer_source_ = source;
  }
  [[nodiscard]] bool uses_bearer() const { return uses_bearer_; }
  // The SASL mechanisms the login may use (the `auth` setting, or the OAuth2 ones),
  // for messages only; empty: libcurl picks from what the server offers.
  void set_wanted_mechanisms(std::vector<std::string> names) { wanted_ = std::move(names); }
  [[nodiscard]] const std::vector<std::string>& wanted_mechanisms() const { return wanted_; }
  // "the OAuth2 access token [from SOURCE] was refused (...)".
  [[nodiscard]] std::string bearer_refused() const;
  // The data of the next perform()s is `data` (UPLOAD, INFILESIZE_LARGE); it must
  // outlive them. clear_upload() switches back to download.
  void set_upload(std::string_view data);
  void clear_upload();
  // Default kMaxMailBytes.
  void set_body_limit(std::size_t bytes) { body_limit_ = bytes; }
  void set_trace(Trace trace);

  // Runs one transfer; body, reply and error text are reset first.
  CURLcode perform();

  // After perform() with CURLOPT_CONNECT_ONLY (connected and logged in): raw bytes
  // on that connection, through its TLS layer (curl_easy_send/curl_easy_recv, which
  // never block: CURLE_AGAIN when they would), and its socket, for waiting on it
  // (CURLINFO_ACTIVESOCKET; CURL_SOCKET_BAD when there is none).
  CURLcode send_raw(std::string_view data, std::size_t& sent);
  CURLcode recv_raw(char* buffer, std::size_t size, std::size_t& received);
  [[nodiscard]] curl_socket_t active_socket() const;

  [[nodiscard]] const std::string& body() const { return body_; }
  std::string take_body() { return std::move(body_); }
  [[nodiscard]] bool overflowed() const { return overflowed_; }
  [[nodiscard]] const std::string& reply() const { return reply_; }
  // The last non-empty reply line, printable ASCII only, at most 300 characters.
  [[nodiscard]] std::string last_reply_line() const;
  // The last reply line that reports the failure, skipping the QUIT/LOGOUT exchange
  // libcurl runs before perform() returns: the line starting with `code` when it is
  // not 0 (SMTP), else a POP3 "-ERR" line or an IMAP tagged NO/BAD. Empty if none.
  [[nodiscard]] std::string failure_reply_line(long code) const;
  // libcurl's error buffer, or curl_easy_strerror(rc) when it is empty.
  [[nodiscard]] std::string error_text(CURLcode rc) const;
  // CURLINFO_RESPONSE_CODE (SMTP reply code; 0 for POP3/IMAP).
  [[nodiscard]] long response_code() const;
  // CURLINFO_NUM_CONNECTS of the last perform(): new connections it made.
  [[nodiscard]] long new_connections() const;
  // CURLINFO_CONNECT_TIME_T of the last perform(); 0 when no TCP connection was made.
  [[nodiscard]] curl_off_t connect_time_us() const;

 private:
  struct Cleanup {
    void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
  };
  static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* self);
  static std::size_t on_reply(char* data, std::size_t size, std::size_t count, void* self);
  static std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* self);
  static int on_debug(CURL* handle, curl_infotype type, char* data, std::size_t size, void* self);

  std::unique_ptr<CURL, Cleanup> handle_;
  std::array<char, CURL_ERROR_SIZE> error_buffer_{};
  std::string body_;
  std::string reply_;
  std::size_t body_limit_ = kMaxMailBytes;
  bool overflowed_ = false;
  std::string_view upload_;
  std::size_t upload_pos_ = 0;
  Trace trace_;
  bool setopt_ok_ = true;
  bool uses_bearer_ = false;
  std::string bearer_source_;
  std::vector<std::string> wanted_;
  int bad_option_ = 0;
};

}  // namespace sqlpost::transport
