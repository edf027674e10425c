// sqlpost/transport/file_link.h — a Link over Maildir folders on a file system.
//
// Contract: every address is a subfolder <root>/<address>/ in Maildir layout
// (tmp/, new/, cur/ created on demand). send() writes <root>/<to>/tmp/<name>,
// fsyncs it, renames it into new/ and fsyncs new/, so a delivered mail is complete
// and durable. Names sort by delivery time: <epoch-ns, 20 digits>.<pid>_<counter>_
// <random>.sqlpost. list() returns the regular files of new/ and cur/ of the own
// address, sorted by file name (foreign files included; dot-files skipped); ids are
// "new/<name>" or "cur/<name>". fetch() reads at most kMaxMailBytes. remove()
// unlinks. An address is a safe folder name: 1..kMaxAddressBytes of
// [A-Za-z0-9._@+-], not starting with '.', without ".." (kInvalidArgument).
// File calls go through platform/files.h (POSIX and Windows); mail files are
// created owner only.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/link.h"

namespace sqlpost::transport {

Result<> check_folder_address(std::string_view address);
// A new mail file name: <epoch-ns, 20 digits>.<pid>_<counter>_<random>.sqlpost (sorts
// by delivery time). Shared with the FTP link, whose folders have the same layout.
Result<std::string> unique_mail_name();
// A name list() accepts: not empty, no leading '.', no '/', no NUL.
bool safe_mail_file_name(std::string_view name);

class FileLink final : public Link {
 public:
  // kInvalidArgument for a bad own address; the root need not exist yet.
  static Result<std::unique_ptr<FileLink>> open(std::filesystem::path root,
                                                std::string own_address);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  Result<std::string> fetch_head(const MailRef& ref, std::size_t max_bytes) override;
  Result<> remove(const MailRef& ref) override;

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] const std::string& address() const { return address_; }

  FileLink(std::filesystem::path root, std::string own_address);  // use open()

 private:
  Result<std::filesystem::path> path_of(const MailRef& ref) const;

  std::filesystem::path root_;
  std::string address_;
};

}  // namespace sqlpost::transport
