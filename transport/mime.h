// sqlpost/transport/mime.h — bounded RFC 5322 header and MIME multipart parsing,
// and header folding for writing (internal to transport/).
//
// Contract: parsing never reads past the given text, accepts CRLF or bare LF line
// ends, unfolds folded headers, and enforces kMaxHeaders, kMaxHeaderLineBytes,
// kMaxHeaderBlockBytes and kMaxMimeParts (kLimitExceeded); anything malformed is
// kCorruption. Returned string_views point into the parsed text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sqlpost::transport::mime {

inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::size_t kMaxLineChars = 76;

struct Field {
  std::string name;   // as written
  std::string value;  // unfolded, surrounding whitespace trimmed
};

struct HeaderBlock {
  std::vector<Field> fields;
  std::size_t body_offset = 0;  // first byte after the blank line
};

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view text, std::string_view prefix);

// Parses the header block at the start of `text`, up to and including the blank line.
Result<HeaderBlock> parse_headers(std::string_view text);

// The value of the one field named `name` (case-insensitive): nullopt if absent,
// kCorruption if it occurs more than once.
Result<std::optional<std::string_view>> unique_field(const HeaderBlock& block,
                                                     std::string_view name);

// True if any header line (before the first blank line, within kMaxHeaderBlockBytes)
// starts with `prefix`, case-insensitively. Never fails.
bool has_header_prefix(std::string_view text, std::string_view prefix);

struct ContentType {
  std::string type;  // "type/subtype", lower-cased
  std::optional<std::string> boundary;
};
Result<ContentType> parse_content_type(std::string_view value);

// The body parts between the delimiters "--boundary" of a multipart body (the
// preamble and epilogue are dropped). kCorruption if the closing delimiter is missing.
Result<std::vector<std::string_view>> split_multipart(std::string_view body,
                                                      std::string_view boundary);

// "Name: value" + CRLF, folded at spaces so that lines stay within kMaxLineChars
// whenever no single word is longer than a line.
std::string fold_field(std::string_view name, std::string_view value);

}  // namespace sqlpost::transport::mime
