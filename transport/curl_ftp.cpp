#include "transport/curl_ftp.h"

#include <algorithm>
#include <utility>

#include "transport/file_link.h"
#include "transport/limits.h"

namespace sqlpost::transport {
namespace {

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// "a b/c" -> "a%20b/c": each '/'-separated segment percent-encoded on its own.
std::string encode_segments(std::string_view raw) {
  std::string out;
  for (;;) {
    const std::size_t slash = raw.find('/');
    out += url_segment(raw.substr(0, slash));
    if (slash == std::string_view::npos) {
      return out;
    }
    out.push_back('/');
    raw.remove_prefix(slash + 1);
  }
}

// "x/new/name" or "name" -> "name": servers differ in what NLST puts before a name.
std::string_view last_segment(std::string_view line) {
  const std::size_t slash = line.rfind('/');
  return slash == std::string_view::npos ? line : line.substr(slash + 1);
}

std::string normalised_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  return dir;
}

}  // namespace

Result<std::unique_ptr<FtpLink>> FtpLink::open(FtpConfig config) {
  SQLPOST_TRY(check_server(config.server));
  SQLPOST_TRY(check_folder_address(config.own_address));
  if (has_control(config.dir) || config.dir.size() > 1024) {
    return make_error(Errc::kConfig,
                      "ftp.dir must be at most 1024 characters without line breaks "
                      "or other control characters");
  }
  config.dir = normalised_dir(std::move(config.dir));
  SQLPOST_TRY_ASSIGN(auto easy, CurlEasy::create());
  return std::make_unique<FtpLink>(std::move(config), std::move(easy));
}

FtpLink::FtpLink(FtpConfig config, std::unique_ptr<CurlEasy> easy)
    : config_(std::move(config)), easy_(std::move(easy)) {
  apply_settings();
}

void FtpLink::apply_settings() {
  apply_server(*easy_, MailProtocol::kFtp, config_.server);
  // Never CWD: every command names its path from the login directory, so QUOTE
  // commands mean the same on a new and on a reused connection.
  easy_->set(CURLOPT_FTP_FILEMETHOD, static_cast<long>(CURLFTPMETHOD_NOCWD));
  // vsftpd (require_ssl_reuse=YES, its default) refuses the data connections of a
  // reused control connection under TLS 1.3 ("522 ... session reuse required"; libcurl
  // 7.88 + OpenSSL 3). TLS 1.2 session reuse works, so FTPS stays at TLS 1.2.
  easy_->set(CURLOPT_FTPSSLAUTH, static_cast<long>(CURLFTPAUTH_TLS));  // RFC 4217 "AUTH TLS"
  const long tls12 = static_cast<long>(CURL_SSLVERSION_TLSv1_2);
  easy_->set(CURLOPT_SSLVERSION, tls12 | (tls12 << 16));  // min | CURL_SSLVERSION_MAX_TLSv1_2
  reset_options();
}

void FtpLink::reset_options() {
  easy_->set(CURLOPT_QUOTE, static_cast<curl_slist*>(nullptr));
  easy_->set(CURLOPT_POSTQUOTE, static_cast<curl_slist*>(nullptr));
  easy_->set(CURLOPT_NOBODY, 0L);
  easy_->set(CURLOPT_DIRLISTONLY, 0L);
  easy_->set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxMailBytes));
  easy_->clear_upload();
}

std::string FtpLink::folder(std::string_view address, std::string_view sub) const {
  std::string path = config_.dir;
  if (!path.empty() && path.back() != '/') {
    path.push_back('/');
  }
  path.append(address);
  if (!sub.empty()) {
    path.append("/").append(sub);
  }
  return path;
}

std::string FtpLink::url_path(const std::string& raw_path) const {
  if (!raw_path.empty() && raw_path.front() == '/') {
    return "%2F" + encode_segments(std::string_view(raw_path).substr(1));  // absolute
  }
  return encode_segments(raw_path);
}

Result<> FtpLink::add_folder_commands(std::string_view address, CurlSlist& quote) {
  if (folders_made_.count(address) != 0) {
    return success();
  }
  // '*': libcurl goes on when MKD fails (the folder usually exists already).
  std::string prefix;
  std::string_view dir = config_.dir;
  if (!dir.empty() && dir.front() == '/') {
    prefix = "/";
    dir.remove_prefix(1);
  }
  while (!dir.empty()) {
    const std::size_t slash = dir.find('/');
    prefix.append(dir.substr(0, slash));
    SQLPOST_TRY(quote.append("*MKD " + prefix));
    prefix.push_back('/');
    dir.remove_prefix(slash == std::string_view::npos ? dir.size() : slash + 1);
  }
  SQLPOST_TRY(quote.append("*MKD " + folder(address, {})));
  for (const char* sub : {"tmp", "new", "cur"}) {
    SQLPOST_TRY(quote.append("*MKD " + folder(address, sub)));
  }
  folders_made_.emplace(address);
  return success();
}

Error FtpLink::failure(CURLcode rc, const std::string& what) const {
  const long code = easy_->response_code();
  // No 5xx names a bad recipient here (the engine's "permanent refusal"): the folder,
  // the rights or the TLS setup are wrong, and the administrator has to act.
  if (rc != CURLE_LOGIN_DENIED && code >= 500 && code < 600) {
    return make_error(Errc::kConfig,
                      what + ": the FTP server refused: " + easy_->failure_reply_line(code) +
                          " (check ftp.dir and the account's rights there)");
  }
  return mail_error(*easy_, rc, what);
}

Result<> FtpLink::send(std::string_view to_address, std::string_view mail) {
  SQLPOST_TRY(check_folder_address(to_address));
  if (mail.empty() || mail.size() > kMaxMailBytes) {
    return make_error(Errc::kInvalidArgument, "a mail must have 1.." +
                                                  std::to_string(kMaxMailBytes) + " bytes, not " +
                                                  std::to_string(mail.size()));
  }
  SQLPOST_TRY_ASSIGN(const std::string name, unique_mail_name());
  const std::string tmp = folder(to_address, "tmp") + "/" + name;
  SQLPOST_TRY_ASSIGN(const std::string url,
                     make_url(MailProtocol::kFtp, config_.server, url_path(tmp)));
  CurlSlist before;
  CurlSlist after;
  SQLPOST_TRY(add_folder_commands(to_address, before));
  SQLPOST_TRY(after.append("RNFR " + tmp));
  SQLPOST_TRY(after.append("RNTO " + folder(to_address, "new") + "/" + name));
  easy_->set(CURLOPT_URL, url.c_str());
  easy_->set(CURLOPT_QUOTE, before.get());
  easy_->set(CURLOPT_POSTQUOTE, after.get());
  easy_->set_upload(mail);
  const CURLcode rc = easy_->perform();
  if (rc == CURLE_OK) {
    reset_options();
    return success();
  }
  const std::string what = "FTP upload to " + folder(to_address, {}) + " at " +
                           server_name(MailProtocol::kFtp, config_.server);
  Error error = failure(rc, what);
  reset_options();
  folders_made_.erase(std::string(to_address));  // maybe they are what is missing
  (void)delete_path(tmp);                        // best effort: tmp/ is never listed
  return error;
}

Result<> FtpLink::delete_path(const std::string& raw_path) {
  SQLPOST_TRY_ASSIGN(const std::string url, make_url(MailProtocol::kFtp, config_.server, {}));
  CurlSlist quote;
  SQLPOST_TRY(quote.append("DELE " + raw_path));
  easy_->set(CURLOPT_URL, url.c_str());
  easy_->set(CURLOPT_NOBODY, 1L);
  easy_->set(CURLOPT_QUOTE, quote.get());
  const CURLcode rc = easy_->perform();
  const long code = easy_->response_code();
  Result<> result = success();
  if (rc == CURLE_QUOTE_ERROR && code == 550) {
    result = make_error(Errc::kNotFound, raw_path + " is no longer on the FTP server");
  } else if (rc != CURLE_OK) {
    result = failure(
        rc, "FTP delete of " + raw_path + " at " + server_name(MailProtocol::kFtp, config_.server));
  }
  reset_options();
  return result;
}

Result<> FtpLink::make_own_folders() {
  CurlSlist quote;
  SQLPOST_TRY(add_folder_commands(config_.own_address, quote));
  if (quote.get() == nullptr) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::string url, make_url(MailProtocol::kFtp, config_.server, {}));
  easy_->set(CURLOPT_URL, url.c_str());
  easy_->set(CURLOPT_NOBODY, 1L);
  easy_->set(CURLOPT_QUOTE, quote.get());
  const CURLcode rc = easy_->perform();
  reset_options();
  if (rc != CURLE_OK) {
    folders_made_.erase(config_.own_address);
    return failure(rc, "FTP login at " + server_name(MailProtocol::kFtp, config_.server));
  }
  return success();
}

Result<> FtpLink::list_folder(std::string_view sub, std::vector<MailRef>& out) {
  const std::string dir = folder(config_.own_address, sub) + "/";
  SQLPOST_TRY_ASSIGN(const std::string url,
                     make_url(MailProtocol::kFtp, config_.server, url_path(dir)));
  easy_->set(CURLOPT_URL, url.c_str());
  easy_->set(CURLOPT_DIRLISTONLY, 1L);
  const CURLcode rc = easy_->perform();
  reset_options();
  if (rc != CURLE_OK) {
    return failure(rc,
                   "FTP list of " + dir + " at " + server_name(MailProtocol::kFtp, config_.server));
  }
  for (const std::string_view line : reply_lines(easy_->body())) {
    const std::string_view name = last_segment(line);
    if (safe_mail_file_name(name)) {
      out.push_back(MailRef{std::string(sub) + "/" + std::string(name), 0});
    }
  }
  return success();
}

Result<std::vector<MailRef>> FtpLink::list() {
  SQLPOST_TRY(make_own_folders());
  std::vector<MailRef> refs;
  SQLPOST_TRY(list_folder("new", refs));
  SQLPOST_TRY(list_folder("cur", refs));
  std::sort(refs.begin(), refs.end(), [](const MailRef& a, const MailRef& b) {
    const std::string_view na = last_segment(a.id);
    const std::string_view nb = last_segment(b.id);
    return na != nb ? na < nb : a.id < b.id;
  });
  return refs;
}

Result<std::string> FtpLink::path_of(const MailRef& ref) const {
  const std::string_view id = ref.id;
  const bool folder_ok = id.starts_with("new/") || id.starts_with("cur/");
  if (!folder_ok || !safe_mail_file_name(id.substr(4))) {
    return make_error(Errc::kInvalidArgument, "not an FTP link mail id: " + ref.id.substr(0, 80));
  }
  return folder(config_.own_address, {}) + "/" + ref.id;
}

Result<std::string> FtpLink::fetch(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const std::string path, path_of(ref));
  SQLPOST_TRY_ASSIGN(const std::string url,
                     make_url(MailProtocol::kFtp, config_.server, url_path(path)));
  easy_->set(CURLOPT_URL, url.c_str());
  const CURLcode rc = easy_->perform();
  reset_options();
  if (rc == CURLE_FILESIZE_EXCEEDED) {
    return make_error(Errc::kLimitExceeded, path + " is larger than kMaxMailBytes");
  }
  if (rc != CURLE_OK) {
    return failure(
        rc, "FTP download of " + path + " at " + server_name(MailProtocol::kFtp, config_.server));
  }
  return easy_->take_body();
}

Result<> FtpLink::remove(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const std::string path, path_of(ref));
  return delete_path(path);
}

Result<> FtpLink::finish() {
  // A new handle; the old one's cleanup ends the session with QUIT.
  SQLPOST_TRY_ASSIGN(auto easy, CurlEasy::create());
  easy_ = std::move(easy);
  apply_settings();
  return success();
}

}  // namespace sqlpost::transport
