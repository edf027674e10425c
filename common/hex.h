// sqlpost/common/hex.h — the one hexadecimal text form of bytes.
//
// Contract: hex_encode() writes two lower-case digits per byte, most significant
// nibble first ("00ff"). hex_decode() reads exactly 2 * out.size() digits of either
// case into `out` and returns false (leaving `out` partly written) when the length
// differs or a character is not a hex digit. No allocation beyond the returned
// string, no I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace sqlpost {

std::string hex_encode(std::span<const std::uint8_t> bytes);

// The value 0..15 of one hex digit of either case, or -1.
int hex_digit_value(char c);

[[nodiscard]] bool hex_decode(std::string_view text, std::span<std::uint8_t> out);

}  // namespace sqlpost
