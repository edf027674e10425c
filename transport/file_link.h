// sqlpost/transport/file_link.h — a Link over Maildir folders on a file system.
//
// Contract: every address is a subfolder <root>/<address>/ in Maildir layout
// (tmp/, new/, cur/ created on demand). send() writes <root>/<to>/tmp/<name> and
// nothing more (no flush to the disk); flush() makes the data of every mail sent
// since the last flush durable in one step (platform::sync_files: one syncfs per
// file system on Linux), then renames each into its new/, then makes those folder
// entries durable in one step (platform::sync_directories), so a mail in new/ is
// always complete, and durable once flush() returned success. A failed flush()
// removes the mails it did not rename (some renamed ones may have arrived, not
// durably: the caller did not record them as sent, so they go again); the link
// destroyed with mails not flushed removes them (never delivered). Names sort by delivery time:
// <epoch-ns, 20 digits>.<pid>_<counter>_ <random>.sqlpost. list() returns the regular files of new/
// and cur/ of the own address, sorted by file name (foreign files included; dot-files skipped); ids
// are "new/<name>" or "cur/<name>". fetch() reads at most kMaxMailBytes. remove() unlinks. An
// address is a safe folder name: 1..kMaxAddressBytes of [A-Za-z0-9._@+-], not starting with '.',
// without ".." (kInvalidArgument). File calls go through platform/files.h (POSIX and Windows); mail
// files are created owner only.
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
  Result<> flush() override;

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] const std::string& address() const { return address_; }

  FileLink(std::filesystem::path root, std::string own_address);  // use open()
  FileLink(const FileLink&) = delete;
  FileLink& operator=(const FileLink&) = delete;
  FileLink(FileLink&&) = delete;
  FileLink& operator=(FileLink&&) = delete;
  ~FileLink() override;  // removes the mails not flushed

 private:
  // A mail written to <dir>/tmp/<name>, not yet flushed.
  struct Unflushed {
    std::filesystem::path dir;
    std::string name;
  };

  Result<std::filesystem::path> path_of(const MailRef& ref) const;
  void remove_unflushed(std::size_t from);

  std::filesystem::path root_;
  std::string address_;
  std::vector<Unflushed> unflushed_;
};

}  // namespace sqlpost::transport
