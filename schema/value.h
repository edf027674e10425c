// sqlpost/schema/value.h — one SQLite value, kept bit for bit.
//
// Contract: a Value holds exactly what SQLite stored: NULL, a 64-bit integer,
// an IEEE double (including -0.0, NaN payloads are not produced by SQLite),
// TEXT as raw bytes (never re-encoded, so invalid UTF-8 survives) or a BLOB.
// Equality is exact: same storage class and same bits.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace sqlpost {

struct Text {
  std::string bytes;
  bool operator==(const Text&) const = default;
};
struct Blob {
  std::vector<std::uint8_t> bytes;
  bool operator==(const Blob&) const = default;
};
struct Null {
  bool operator==(const Null&) const = default;
};

class Value {
 public:
  using Storage = std::variant<Null, std::int64_t, double, Text, Blob>;

  Value() = default;
  Value(std::int64_t v) : v_(v) {}     // NOLINT(google-explicit-constructor)
  Value(double v) : v_(v) {}           // NOLINT(google-explicit-constructor)
  Value(Text v) : v_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  Value(Blob v) : v_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  static Value text(std::string s) { return Value(Text{std::move(s)}); }

  [[nodiscard]] bool is_null() const { return std::holds_alternative<Null>(v_); }
  [[nodiscard]] const Storage& storage() const { return v_; }
  Storage& storage() { return v_; }

  // Bit-exact equality: 0.0 and -0.0 differ, 1 and 1.0 differ.
  friend bool operator==(const Value& a, const Value& b) {
    if (a.v_.index() != b.v_.index()) {
      return false;
    }
    if (const auto* x = std::get_if<double>(&a.v_)) {
      return std::bit_cast<std::uint64_t>(*x) ==
             std::bit_cast<std::uint64_t>(std::get<double>(b.v_));
    }
    return a.v_ == b.v_;
  }

  // A short rendering for messages and diagnostics (not an SQL literal).
  [[nodiscard]] std::string debug_string() const;

 private:
  Storage v_;
};

using Row = std::vector<Value>;

}  // namespace sqlpost
