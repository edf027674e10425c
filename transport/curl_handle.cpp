#include "transport/curl_handle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace sqlpost::transport {

Result<> curl_global() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) {
    return make_error(Errc::kInternal,
                      std::string("libcurl initialisation failed: ") + curl_easy_strerror(rc));
  }
  return success();
}

Result<> CurlSlist::append(const std::string& item) {
  curl_slist* head = curl_slist_append(list_.get(), item.c_str());
  if (head == nullptr) {
    return make_error(Errc::kInternal, "libcurl could not allocate a list entry");
  }
  (void)list_.release();  // the same list, now owned through `head`
  list_.reset(head);
  return success();
}

Result<std::unique_ptr<CurlEasy>> CurlEasy::create() {
  SQLPOST_TRY(curl_global());
  auto easy = std::make_unique<CurlEasy>(Token{});
  easy->handle_.reset(curl_easy_init());
  if (!easy->handle_) {
    return make_error(Errc::kInternal, "libcurl could not create a handle (curl_easy_init)");
  }
  CurlEasy* self = easy.get();
  easy->set(CURLOPT_ERRORBUFFER, self->error_buffer_.data());
  easy->set(CURLOPT_NOSIGNAL, 1L);
  easy->set(CURLOPT_WRITEFUNCTION, &CurlEasy::on_body);
  easy->set(CURLOPT_WRITEDATA, static_cast<void*>(self));
  easy->set(CURLOPT_HEADERFUNCTION, &CurlEasy::on_reply);
  easy->set(CURLOPT_HEADERDATA, static_cast<void*>(self));
  easy->set(CURLOPT_READFUNCTION, &CurlEasy::on_read);
  easy->set(CURLOPT_READDATA, static_cast<void*>(self));
  return easy;
}

void CurlEasy::set_upload(std::string_view data) {
  upload_ = data;
  upload_pos_ = 0;
  set(CURLOPT_UPLOAD, 1L);
  set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(data.size()));
}

void CurlEasy::clear_upload() {
  upload_ = {};
  upload_pos_ = 0;
  set(CURLOPT_UPLOAD, 0L);
  set(CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(-1));
}

void CurlEasy::set_trace(Trace trace) {
  trace_ = std::move(trace);
  set(CURLOPT_DEBUGFUNCTION, &CurlEasy::on_debug);
  set(CURLOPT_DEBUGDATA, static_cast<void*>(this));
  set(CURLOPT_VERBOSE, trace_ ? 1L : 0L);
}

CURLcode CurlEasy::perform() {
  body_.clear();
  reply_.clear();
  overflowed_ = false;
  upload_pos_ = 0;
  error_buffer_[0] = '\0';
  if (!setopt_ok_) {
    (void)std::snprintf(error_buffer_.data(), error_buffer_.size(),
                        "libcurl rejected option %d (too old a libcurl?)", bad_option_);
    return CURLE_BAD_FUNCTION_ARGUMENT;
  }
  return curl_easy_perform(handle_.get());
}

std::size_t CurlEasy::on_body(char* data, std::size_t size, std::size_t count, void* self) {
  auto* easy = static_cast<CurlEasy*>(self);
  const std::size_t bytes = size * count;
  if (bytes > easy->body_limit_ - std::min(easy->body_limit_, easy->body_.size())) {
    easy->overflowed_ = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  easy->body_.append(data, bytes);
  return bytes;
}

std::size_t CurlEasy::on_reply(char* data, std::size_t size, std::size_t count, void* self) {
  auto* easy = static_cast<CurlEasy*>(self);
  const std::size_t bytes = size * count;
  easy->reply_.append(data, std::min(bytes, kMaxReplyBytes));
  if (easy->reply_.size() > kMaxReplyBytes) {
    easy->reply_.erase(0, easy->reply_.size() - kMaxReplyBytes / 2);
  }
  return bytes;
}

std::size_t CurlEasy::on_read(char* buffer, std::size_t size, std::size_t count, void* self) {
  auto* easy = static_cast<CurlEasy*>(self);
  const std::size_t left = easy->upload_.size() - easy->upload_pos_;
  const std::size_t bytes = std::min(size * count, left);
  std::memcpy(buffer, easy->upload_.data() + easy->upload_pos_, bytes);
  easy->upload_pos_ += bytes;
  return bytes;
}

int CurlEasy::on_debug(CURL* /*handle*/, curl_infotype type, char* data, std::size_t size,
                       void* self) {
  auto* easy = static_cast<CurlEasy*>(self);
  if (easy->trace_) {
    easy->trace_(type, std::string_view(data, size));
  }
  return 0;
}

namespace {

std::string printable(std::string_view text) {
  std::string line;
  for (const char c : text.substr(0, 300)) {
    line.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return line;
}

// Calls `pick` with each reply line, last first, until it returns true.
template <class Pick>
std::string_view find_line_backwards(std::string_view text, Pick pick) {
  while (!text.empty()) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
      text.remove_suffix(1);
    }
    const std::size_t start = text.rfind('\n');
    const std::string_view line = start == std::string_view::npos ? text : text.substr(start + 1);
    if (!line.empty() && pick(line)) {
      return line;
    }
    text.remove_suffix(line.size());
  }
  return {};
}

bool imap_failure(std::string_view line) {
  const std::size_t space = line.find(' ');
  if (space == std::string_view::npos || line[0] == '*') {
    return false;
  }
  const std::string_view rest = line.substr(space + 1);
  return rest.rfind("NO ", 0) == 0 || rest.rfind("BAD ", 0) == 0;
}

}  // namespace

std::string CurlEasy::last_reply_line() const {
  return printable(find_line_backwards(reply_, [](std::string_view) { return true; }));
}

std::string CurlEasy::failure_reply_line(long code) const {
  const std::string prefix = std::to_string(code);
  return printable(find_line_backwards(reply_, [&](std::string_view line) {
    if (code != 0) {
      return line.rfind(prefix, 0) == 0;
    }
    return line.rfind("-ERR", 0) == 0 || imap_failure(line);
  }));
}

std::string CurlEasy::bearer_refused() const {
  return "the OAuth2 access token" +
         (bearer_source_.empty() ? std::string() : " from " + bearer_source_) +
         " was refused (expired or revoked, without the mail scope, or issued for another "
         "account than the user name)";
}

std::string CurlEasy::error_text(CURLcode rc) const {
  if (error_buffer_[0] != '\0') {
    std::string text(error_buffer_.data(), strnlen(error_buffer_.data(), error_buffer_.size()));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
      text.pop_back();
    }
    return text;
  }
  return curl_easy_strerror(rc);
}

long CurlEasy::response_code() const {
  long code = 0;
  curl_easy_getinfo(handle_.get(), CURLINFO_RESPONSE_CODE, &code);
  return code;
}

long CurlEasy::new_connections() const {
  long count = 0;
  curl_easy_getinfo(handle_.get(), CURLINFO_NUM_CONNECTS, &count);
  return count;
}

curl_off_t CurlEasy::connect_time_us() const {
  curl_off_t micros = 0;
  curl_easy_getinfo(handle_.get(), CURLINFO_CONNECT_TIME_T, &micros);
  return micros;
}

CURLcode CurlEasy::send_raw(std::string_view data, std::size_t& sent) {
  sent = 0;
  return curl_easy_send(handle_.get(), data.data(), data.size(), &sent);
}

CURLcode CurlEasy::recv_raw(char* buffer, std::size_t size, std::size_t& received) {
  received = 0;
  return curl_easy_recv(handle_.get(), buffer, size, &received);
}

curl_socket_t CurlEasy::active_socket() const {
  curl_socket_t socket = CURL_SOCKET_BAD;
  if (curl_easy_getinfo(handle_.get(), CURLINFO_ACTIVESOCKET, &socket) != CURLE_OK) {
    return CURL_SOCKET_BAD;
  }
  return socket;
}

}  // namespace sqlpost::transport
