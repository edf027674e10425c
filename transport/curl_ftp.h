// sqlpost/transport/curl_ftp.h — a Link over folders on an FTP server, with libcurl.
//
// Contract: the same layout and guarantees as the file link (file_link.h), on an FTP
// (or FTPS) server: every address is a folder <dir>/<address>/ with tmp/, new/ and cur/.
//  * send() creates the folders when this link has not yet done so for the address
//    (MKD, failures ignored: they usually exist), uploads the mail as
//    <dir>/<to>/tmp/<name> (STOR) and, only after the server confirmed the complete
//    upload (226), renames it to <dir>/<to>/new/<name> (RNFR/RNTO). A mail is thus
//    listed only when complete; a failed upload or rename leaves at most a file in
//    tmp/ (removed again when possible), which list() never returns. Names as in the
//    file link (unique_mail_name()), so they sort by delivery time.
//  * list() returns the files of new/ and cur/ of the own address (NLST), sorted by
//    name; ids "new/<name>" or "cur/<name>". Names the file link would not accept
//    (dot files, '/', NUL) are skipped. The server reports no sizes here: size is 0.
//  * fetch() downloads one file (RETR), never more than kMaxMailBytes (kLimitExceeded).
//  * remove() deletes one file (DELE) — the engine calls it only after the mail is
//    stored in the inbox and committed. A file that is already gone: kNotFound.
//  * finish() closes the connection (QUIT); the link stays usable.
// One libcurl handle serves the whole object: one login, reused. libcurl never changes
// directory (FTP method "nocwd"): every path is relative to the login directory, or
// absolute when `dir` starts with '/'. Security as in curl_server.h: kStartTls is
// explicit TLS (AUTH TLS, then protected data connections, never a downgrade), kTls is
// implicit TLS (ftps://, port 990), kNone is clear text; TLS is capped at 1.2, whose
// session reuse vsftpd requires for data connections. Passive mode (EPSV, PASV).
// Errors as in curl_server.h, except that every 5xx reply but a refused login (the
// server refusing a folder, a file, or the TLS data connection) is kConfig with the
// server's reply and a hint at ftp.dir; kInvalidArgument for a bad address or id.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_handle.h"
#include "transport/curl_server.h"
#include "transport/link.h"

namespace sqlpost::transport {

struct FtpConfig {
  MailServer server;        // port 0: 21 (kStartTls, kNone) or 990 (kTls)
  std::string dir;          // the shared folder; empty: the login directory
  std::string own_address;  // this site's folder name (check_folder_address)
};

class FtpLink final : public Link {
 public:
  // kConfig for unusable settings (dir with a line break or NUL, or a ".." segment);
  // kInvalidArgument for a bad own address. Nothing is contacted yet.
  static Result<std::unique_ptr<FtpLink>> open(FtpConfig config);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  Result<> remove(const MailRef& ref) override;
  Result<> finish() override;

  FtpLink(FtpConfig config, std::unique_ptr<CurlEasy> easy);  // use open()

 private:
  // The path of `address`'s folder (+ "/" + `sub` when given), raw and as a URL path.
  [[nodiscard]] std::string folder(std::string_view address, std::string_view sub) const;
  [[nodiscard]] std::string url_path(const std::string& raw_path) const;
  // Commands (QUOTE) that create the folders of `address`, once per link and address.
  Result<> add_folder_commands(std::string_view address, CurlSlist& quote);
  Result<> make_own_folders();
  Result<> list_folder(std::string_view sub, std::vector<MailRef>& out);
  // DELE `raw_path`; kNotFound for a 550 reply (the file is gone).
  Result<> delete_path(const std::string& raw_path);
  Result<std::string> path_of(const MailRef& ref) const;
  Error failure(CURLcode rc, const std::string& what) const;
  void apply_settings();  // connection settings on a new handle
  void reset_options();   // back to a plain download after each transfer

  FtpConfig config_;
  std::unique_ptr<CurlEasy> easy_;
  std::set<std::string, std::less<>> folders_made_;  // addresses whose folders exist
};

}  // namespace sqlpost::transport
