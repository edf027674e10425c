#include "agent/site_file.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "schema/db.h"
#include "schema/migrations.h"

namespace sqlpost {
namespace {

constexpr std::string_view kSqliteHeader{"SQLite format 3\0", 16};

struct Magic {
  std::string_view bytes;
  std::string_view what;
};

// Signatures of the files most often given by mistake.
constexpr std::array<Magic, 13> kMagic = {{
    {"\x7f"
     "ELF",
     "an ELF program or library"},
    {"\x1f\x8b", "gzip-compressed data (a compressed backup? gunzip it first)"},
    {"\x28\xb5\x2f\xfd", "zstd-compressed data"},
    {"\xfd"
     "7zXZ",
     "xz-compressed data"},
    {"BZh", "bzip2-compressed data"},
    {"PK\x03\x04", "a zip archive"},
    {"%PDF", "a PDF document"},
    {"\x89PNG", "a PNG image"},
    {"\xff\xd8\xff", "a JPEG image"},
    {"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7",
     "an SQLite rollback journal (DB-journal), not the database"},
    {"\x37\x7f\x06\x82", "an SQLite write-ahead log (DB-wal), not the database"},
    {"\x37\x7f\x06\x83", "an SQLite write-ahead log (DB-wal), not the database"},
    {"Return-Path:", "an e-mail message"},
}};

bool looks_like_text(std::string_view head) {
  return std::all_of(head.begin(), head.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 || c == '\n' || c == '\r' || c == '\t';
  });
}

std::string first_line(std::string_view head) {
  std::string line(head.substr(0, std::min(head.find_first_of("\r\n"), std::size_t{40})));
  return line;
}

std::string read_head(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<char, 512> buf{};
  in.read(buf.data(), buf.size());
  return {buf.data(), static_cast<std::size_t>(in.gcount())};
}

Result<bool> has_sqlpost_tables(const std::string& path) {
  SQLPOST_TRY_ASSIGN(Database db, Database::open(path, Database::Mode::kReadOnly));
  return has_site_tables(db);
}

}  // namespace

std::string describe_content(const std::string& head) {
  for (const auto& m : kMagic) {
    if (std::string_view(head).starts_with(m.bytes)) {
      return std::string(m.what);
    }
  }
  if (looks_like_text(head)) {
    return "a text file starting with \"" + first_line(head) + "\"";
  }
  return "data of an unknown kind";
}

std::optional<std::string> check_site_file(const std::string& path, bool for_init) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    if (for_init) {
      return std::nullopt;
    }
    return path + ": no such file; make a site with 'sqlpost init' (or a remote with " +
           "'sqlpost extract')";
  }
  if (std::filesystem::is_directory(status)) {
    return path + " is a folder, not an SQLite database";
  }
  const std::string head = read_head(path);
  if (head.empty()) {
    if (for_init) {
      return std::nullopt;
    }
    return path + " is an empty file, not an sqlpost site; run 'sqlpost init " + path +
           " --site NAME --address ADDRESS' to make it one";
  }
  if (!std::string_view(head).starts_with(kSqliteHeader)) {
    return path + " is not an SQLite database: it is " + describe_content(head);
  }
  if (for_init) {
    return std::nullopt;
  }
  const auto site = has_sqlpost_tables(path);
  if (site.ok() && !site.value()) {
    return path + " is an SQLite database but not an sqlpost site (it has no sqlpost tables); " +
           "run 'sqlpost init " + path + " --site NAME --address ADDRESS' to make it one";
  }
  return std::nullopt;  // a site, or unreadable: the command's own open says which
}

}  // namespace sqlpost
