#include "transport/file_link.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include "transport/crypto.h"
#include "transport/limits.h"

namespace sqlpost::transport {
namespace {

namespace fs = std::filesystem;

// Owns one POSIX file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  // Closes now and reports the error close() may return (delayed write errors).
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

Error io_error(const std::string& what, const fs::path& path, int err) {
  const Errc code = (err == ENOENT) ? Errc::kNotFound : Errc::kIOError;
  return make_error(code, what + " " + path.string() + ": " + std::strerror(err));
}

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
                              static_cast<long long>(ns), static_cast<long>(::getpid()),
                              static_cast<unsigned long long>(counter.fetch_add(1)), rnd[0], rnd[1],
                              rnd[2], rnd[3]);
  if (n <= 0) return make_error(Errc::kInternal, "cannot format a mail file name");
  return std::string(buf.data());
}

namespace {

Result<> write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot write", path, errno);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return success();
}

Result<> fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) return io_error("cannot fsync directory", dir, errno);
  return success();
}

// Writes `mail` to `path` durably (fsync + close both checked).
Result<> write_file(const fs::path& path, std::string_view mail) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return io_error("cannot create", path, errno);
  SQLPOST_TRY(write_all(fd.get(), mail, path));
  if (::fsync(fd.get()) != 0) return io_error("cannot fsync", path, errno);
  if (fd.close() != 0) return io_error("cannot close", path, errno);
  return success();
}

Result<std::string> read_bounded(int fd, const fs::path& path) {
  std::string out;
  std::array<char, std::size_t{64} * 1024> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read", path, errno);
    if (n == 0) return out;
    out.append(buf.data(), static_cast<std::size_t>(n));
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

Result<> FileLink::send(std::string_view to_address, std::string_view mail) {
  SQLPOST_TRY(check_folder_address(to_address));
  const fs::path dir = root_ / std::string(to_address);
  SQLPOST_TRY(ensure_maildir(dir));
  SQLPOST_TRY_ASSIGN(const std::string name, unique_mail_name());
  const fs::path tmp = dir / "tmp" / name;
  if (auto written = write_file(tmp, mail); !written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  if (::rename(tmp.c_str(), (dir / "new" / name).c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("cannot deliver", tmp, err);
  }
  return fsync_dir(dir / "new");
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
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return io_error("cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error("cannot stat", path, errno);
  if (static_cast<std::uint64_t>(st.st_size) > kMaxMailBytes) {
    return make_error(Errc::kLimitExceeded, path.string() + " is larger than kMaxMailBytes");
  }
  return read_bounded(fd.get(), path);
}

Result<> FileLink::remove(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const fs::path path, path_of(ref));
  if (::unlink(path.c_str()) != 0) return io_error("cannot remove", path, errno);
  return success();
}

}  // namespace sqlpost::transport
