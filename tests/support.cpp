#include "tests/support.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sqlpost::test {
namespace {

std::string scratch_root() {
  const char* env = std::getenv("SQLPOST_TEST_TMP");
  return env != nullptr ? env : "/tmp/sqlpost-tests";
}

std::string render(const Value& v) {
  const auto& s = v.storage();
  if (std::holds_alternative<double>(s)) {
    double d = std::get<double>(s);
    std::array<char, 64> buf{};
    std::uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    (void)std::snprintf(buf.data(), buf.size(), "real:%016llx",
                        static_cast<unsigned long long>(bits));
    return buf.data();
  }
  if (const auto* t = std::get_if<Text>(&s)) {
    return "text:" + t->bytes;
  }
  if (const auto* b = std::get_if<Blob>(&s)) {
    return "blob:" + std::string(b->bytes.begin(), b->bytes.end());
  }
  return v.debug_string();
}

}  // namespace

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::filesystem::create_directories(scratch_root());
  dir_ = scratch_root() + "/t" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  const std::string full = command_line + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");  // NOLINT(cert-env33-c): test helper
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    result.output.append(buf.data(), n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CommandResult run_sqlpost(const std::string& arguments) {
  const char* bin = std::getenv("SQLPOST_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "SQLPOST_BIN is not set (run through ctest)");
  return run_command(shell_quote(bin) + " " + arguments);
}

void sqlpost_ok(const std::string& arguments) {
  const auto r = run_sqlpost(arguments);
  REQUIRE_MESSAGE(r.exit_code == 0, "sqlpost " << arguments << "\n" << r.output);
}

void sqlite_shell(const std::string& db, const std::string& sql) {
  const auto r = run_command("sqlite3 " + shell_quote(db) + " " + shell_quote(sql));
  REQUIRE_MESSAGE(r.exit_code == 0, sql << "\n" << r.output);
}

bool site_quiet(const std::string& db) {
  const auto r = run_sqlpost("status " + shell_quote(db) + " --json");
  REQUIRE(r.exit_code == 0);
  const auto status = nlohmann::json::parse(r.output);
  for (const auto& p : status["partners"]) {
    if (p["unsent_changes"] != 0 || p["delivery"]["outbox_messages"] != 0 ||
        p["delivery"]["inbox_parts"] != 0) {
      return false;
    }
  }
  return true;
}

Database open_db(const std::string& path) {
  auto db = Database::open(path, Database::Mode::kReadWriteCreate);
  REQUIRE_MESSAGE(db.ok(), (db.ok() ? "" : db.error().message));
  return std::move(db).value();
}

void exec(Database& db, const std::string& sql) {
  auto r = db.exec(sql);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message + " in: " + sql));
}

std::int64_t query_int(Database& db, const std::string& sql) {
  auto r = db.query_int(sql);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message + " in: " + sql));
  return r.value();
}

std::vector<Row> table_rows(Database& db, const std::string& table) {
  auto keys = db.prepare("SELECT name FROM pragma_table_info(" + quote_literal(table) +
                         ") WHERE pk > 0 ORDER BY pk");
  REQUIRE(keys.ok());
  std::string order;
  while (keys->step().value()) {
    order += (order.empty() ? "" : ", ") + quote_identifier(keys->column_text(0));
  }
  auto st = db.prepare("SELECT * FROM " + quote_identifier(table) +
                       (order.empty() ? "" : " ORDER BY " + order));
  REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
  std::vector<Row> rows;
  while (st->step().value()) {
    Row row;
    for (int i = 0; i < st->column_count(); ++i) {
      row.push_back(st->column(i));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string dump_database(Database& db) {
  std::string out;
  auto tables = db.prepare("SELECT name, sql FROM sqlite_master ORDER BY type, name");
  REQUIRE(tables.ok());
  std::vector<std::string> names;
  while (tables->step().value()) {
    out += tables->column_text(1) + "\n";
    names.push_back(tables->column_text(0));
  }
  for (const auto& name : names) {
    auto st = db.prepare("SELECT * FROM " + quote_identifier(name));
    if (!st.ok()) {
      continue;  // indexes, triggers
    }
    while (st->step().value()) {
      for (int i = 0; i < st->column_count(); ++i) {
        out += render(st->column(i)) + "|";
      }
      out += "\n";
    }
  }
  return out;
}

std::string compare_tables(Database& a, Database& b, const std::string& table) {
  const auto left = table_rows(a, table);
  const auto right = table_rows(b, table);
  const std::size_t n = std::min(left.size(), right.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (left[i].size() != right[i].size()) {
      return table + ": row " + std::to_string(i) + " has a different column count";
    }
    for (std::size_t c = 0; c < left[i].size(); ++c) {
      if (!(left[i][c] == right[i][c])) {
        return table + ": row " + std::to_string(i) + " (first column " + render(left[i][0]) +
               ") column " + std::to_string(c) + ": " + render(left[i][c]) +
               " != " + render(right[i][c]);
      }
    }
  }
  if (left.size() != right.size()) {
    return table + ": " + std::to_string(left.size()) + " rows vs " + std::to_string(right.size()) +
           " rows";
  }
  return {};
}

}  // namespace sqlpost::test
