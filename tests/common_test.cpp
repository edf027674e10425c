// common/: the hex text form and the Result vocabulary. No I/O, no library:
// this program is also built for Windows and run under Wine (tools/mingw-check.sh).
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/hex.h"
#include "common/result.h"

namespace sqlpost {
namespace {

TEST_CASE("hex_encode writes two lower-case digits per byte") {
  const std::vector<std::uint8_t> bytes = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  CHECK(hex_encode(bytes) == "00017f80abff");
  CHECK(hex_encode({}).empty());
}

TEST_CASE("hex_decode reads both cases and round-trips every byte value") {
  std::array<std::uint8_t, 256> all{};
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  const std::string text = hex_encode(all);
  REQUIRE(text.size() == 512);
  std::array<std::uint8_t, 256> back{};
  REQUIRE(hex_decode(text, back));
  CHECK(back == all);

  std::array<std::uint8_t, 3> out{};
  REQUIRE(hex_decode("aBcDeF", out));
  CHECK(out == std::array<std::uint8_t, 3>{0xab, 0xcd, 0xef});
}

TEST_CASE("hex_decode refuses a wrong length and non-hex digits") {
  std::array<std::uint8_t, 2> out{};
  CHECK_FALSE(hex_decode("abc", out));
  CHECK_FALSE(hex_decode("abcdef", out));
  CHECK_FALSE(hex_decode("abcg", out));
  CHECK_FALSE(hex_decode("ab c", out));
  CHECK_FALSE(hex_decode("0x12", out));
  CHECK(hex_digit_value('9') == 9);
  CHECK(hex_digit_value('F') == 15);
  CHECK(hex_digit_value('/') == -1);
  CHECK(hex_digit_value('g') == -1);
}

Result<int> half(int v) {
  if (v % 2 != 0) return make_error(Errc::kInvalidArgument, "odd");
  return v / 2;
}

Result<int> quarter(int v) {
  SQLPOST_TRY_ASSIGN(const int h, half(v));
  return half(h);
}

TEST_CASE("Result carries a value or an error through SQLPOST_TRY_ASSIGN") {
  auto ok = quarter(8);
  REQUIRE(ok.ok());
  CHECK(*ok == 2);
  auto bad = quarter(6);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::kInvalidArgument);
  CHECK(bad.error().message == "odd");
  CHECK(std::string(errc_name(Errc::kBusy)) == "busy");
}

}  // namespace
}  // namespace sqlpost
