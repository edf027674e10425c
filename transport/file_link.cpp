#include "transport/file_link.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <span>
#include <utility>

#include "platform/files.h"
#include "platform/process.h"
#include "transport/crypto.h"
#include "transport/limits.h"

namespace sqlpost::transport {
namespace {

namespace fs = std::filesystem;

Result<> ensure_maildir(const fs::path& dir) {
  for (const char* sub : {"tmp", "new", "cur"}) {
    std::error_code ec;
    fs::create_directories(dir / sub, ec);
    if (ec)
      return make_error(Errc::kIOError,
                        "cannot create " + (dir / sub).string() + ": " + ec.message());
  }
  return success();
}

}  // namespace

Result<std::string> unique_mail_name() {
  static std::atomic<std::uint64_t> counter{0};
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::array<std::uint8_t, 4> rnd{};
  SQLPOST_TRY(crypto::random_bytes(rnd));
  std::array<char, 96> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%020lld.%ld_%llu_%02x%02x%02x%02x.sqlpost",
                              static_cast<long long>(ns), platform::process_id(),
                              static_cast<unsigned long long>(counter.fetch_add(1)), rnd[0], rnd[1],
                              rnd[2], rnd[3]);
  if (n <= 0) return make_error(Errc::kInternal, "cannot format a mail file name");
  return std::string(buf.data());
}

namespace {

// Writes `mail` to `path` (close checked); flush() makes it durable.
Result<> write_file(const fs::path& path, std::string_view mail) {
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::create_new(path));
  SQLPOST_TRY(file.write_all(mail));
  return file.close();
}

Result<std::string> read_bounded(platform::File& file, const fs::path& path) {
  std::string out;
  std::array<char, std::size_t{64} * 1024> buf{};
  for (;;) {
    SQLPOST_TRY_ASSIGN(const std::size_t n, file.read(buf));
    if (n == 0) return out;
    out.append(buf.data(), n);
    if (out.size() > kMaxMailBytes) {
      return make_error(Errc::kLimitExceeded, path.string() + " is larger than kMaxMailBytes");
    }
  }
}

bool safe_file_name(std::string_view name) { return safe_mail_file_name(name); }

Result<> list_folder(const fs::path& dir, std::string_view sub, std::vector<MailRef>& out) {
  std::error_code ec;
  for (fs::directory_iterator it(dir / sub, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code size_ec;
    if (!safe_file_name(name) || !it->is_regular_file(size_ec)) continue;
    const auto size = it->file_size(size_ec);
    if (size_ec) continue;  // vanished meanwhile
    out.push_back(MailRef{std::string(sub) + "/" + name, static_cast<std::size_t>(size)});
  }
  if (ec)
    return make_error(Errc::kIOError, "cannot list " + (dir / sub).string() + ": " + ec.message());
  return success();
}

std::string_view file_name_of(const MailRef& ref) {
  return std::string_view(ref.id).substr(ref.id.find('/') + 1);
}

}  // namespace

bool safe_mail_file_name(std::string_view name) {
  return !name.empty() && name.front() != '.' && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

Result<> check_folder_address(std::string_view address) {
  const bool chars_ok = std::all_of(address.begin(), address.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '+' || c == '-';
  });
  if (address.empty() || address.size() > kMaxAddressBytes || !chars_ok || address.front() == '.' ||
      address.find("..") != std::string_view::npos) {
    return make_error(Errc::kInvalidArgument,
                      "file link address '" + std::string(address.substr(0, kMaxAddressBytes)) +
                          "' is not a safe folder name (1..254 of [A-Za-z0-9._@+-], no leading "
                          "'.', no '..')");
  }
  return success();
}

FileLink::FileLink(std::filesystem::path root, std::string own_address)
    : root_(std::move(root)), address_(std::move(own_address)) {}

Result<std::unique_ptr<FileLink>> FileLink::open(std::filesystem::path root,
                                                 std::string own_address) {
  SQLPOST_TRY(check_folder_address(own_address));
  return std::make_unique<FileLink>(std::move(root), std::move(own_address));
}

FileLink::~FileLink() { remove_unflushed(0); }

void FileLink::remove_unflushed(std::size_t from) {
  for (std::size_t i = from; i < unflushed_.size(); ++i) {
    (void)platform::remove_file(unflushed_[i].dir / "tmp" / unflushed_[i].name);
  }
  unflushed_.clear();
}

Result<> FileLink::send(std::string_view to_address, std::string_view mail) {
  SQLPOST_TRY(check_folder_address(to_address));
  const fs::path dir = root_ / std::string(to_address);
  SQLPOST_TRY(ensure_maildir(dir));
  SQLPOST_TRY_ASSIGN(const std::string name, unique_mail_name());
  const fs::path tmp = dir / "tmp" / name;
  if (auto written = write_file(tmp, mail); !written.ok()) {
    (void)platform::remove_file(tmp);
    return written;
  }
  unflushed_.push_back(Unflushed{dir, name});
  return success();
}

// Data first, then the names: a mail appears in new/ only once its bytes are on the
// disk, and a crash at any point leaves either nothing in new/ or the whole mail.
Result<> FileLink::flush() {
  if (unflushed_.empty()) {
    return success();
  }
  std::vector<fs::path> files;
  files.reserve(unflushed_.size());
  for (const Unflushed& u : unflushed_) {
    files.push_back(u.dir / "tmp" / u.name);
  }
  if (auto synced = platform::sync_files(files); !synced.ok()) {
    remove_unflushed(0);
    return synced;
  }
  std::vector<fs::path> folders;
  folders.reserve(unflushed_.size());
  for (std::size_t i = 0; i < unflushed_.size(); ++i) {
    const Unflushed& u = unflushed_[i];
    if (auto delivered = platform::rename_replace(files[i], u.dir / "new" / u.name);
        !delivered.ok()) {
      remove_unflushed(i);
      return delivered;
    }
    if (folders.empty() || folders.back() != u.dir / "new") {
      folders.push_back(u.dir / "new");
    }
  }
  unflushed_.clear();
  return platform::sync_directories(folders);
}

Result<std::vector<MailRef>> FileLink::list() {
  const fs::path dir = root_ / address_;
  SQLPOST_TRY(ensure_maildir(dir));
  std::vector<MailRef> refs;
  SQLPOST_TRY(list_folder(dir, "new", refs));
  SQLPOST_TRY(list_folder(dir, "cur", refs));
  std::sort(refs.begin(), refs.end(), [](const MailRef& a, const MailRef& b) {
    const auto na = file_name_of(a);
    const auto nb = file_name_of(b);
    return na != nb ? na < nb : a.id < b.id;
  });
  return refs;
}

Result<std::filesystem::path> FileLink::path_of(const MailRef& ref) const {
  const std::string_view id = ref.id;
  const bool folder_ok = id.starts_with("new/") || id.starts_with("cur/");
  if (!folder_ok || !safe_file_name(id.substr(4))) {
    return make_error(Errc::kInvalidArgument, "not a file link mail id: " + ref.id);
  }
  return root_ / address_ / std::string(id);
}

Result<std::string> FileLink::fetch(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const fs::path path, path_of(ref));
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::open_read(path));
  SQLPOST_TRY_ASSIGN(const std::uint64_t size, file.size());
  if (size > kMaxMailBytes) {
    return make_error(Errc::kLimitExceeded, path.string() + " is larger than kMaxMailBytes");
  }
  return read_bounded(file, path);
}

Result<std::string> FileLink::fetch_head(const MailRef& ref, std::size_t max_bytes) {
  SQLPOST_TRY_ASSIGN(const fs::path path, path_of(ref));
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::open_read(path));
  std::string out(max_bytes, '\0');
  std::size_t have = 0;
  while (have < max_bytes) {
    SQLPOST_TRY_ASSIGN(const std::size_t n,
                       file.read(std::span<char>(out.data() + have, max_bytes - have)));
    if (n == 0) break;
    have += n;
  }
  out.resize(have);
  return out;
}

Result<> FileLink::remove(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const fs::path path, path_of(ref));
  return platform::remove_file(path);
}

}  // namespace sqlpost::transport
