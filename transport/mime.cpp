#include "transport/mime.h"

#include <algorithm>

#include "transport/limits.h"

namespace sqlpost::transport::mime {
namespace {

struct Line {
  std::string_view text;  // without the line end
  std::size_t next = 0;   // offset of the following line
  bool terminated = false;
};

Line read_line(std::string_view s, std::size_t pos) {
  const std::size_t nl = s.find('\n', pos);
  if (nl == std::string_view::npos) return {s.substr(pos), s.size(), false};
  std::size_t end = nl;
  if (end > pos && s[end - 1] == '\r') --end;
  return {s.substr(pos, end - pos), nl + 1, true};
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

bool valid_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(),
                                      [](char c) { return c > ' ' && c < 127 && c != ':'; });
}

Result<> append_continuation(HeaderBlock& block, std::string_view line) {
  if (block.fields.empty()) {
    return make_error(Errc::kCorruption, "mail starts with a folded header continuation line");
  }
  std::string& value = block.fields.back().value;
  if (value.size() + line.size() > kMaxHeaderLineBytes) {
    return make_error(Errc::kLimitExceeded, "a header field exceeds kMaxHeaderLineBytes");
  }
  value.append(line);
  return success();
}

Result<> add_field(HeaderBlock& block, std::string_view line) {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || !valid_field_name(line.substr(0, colon))) {
    return make_error(Errc::kCorruption, "malformed header line");
  }
  if (block.fields.size() >= kMaxHeaders) {
    return make_error(Errc::kLimitExceeded, "more than kMaxHeaders header fields");
  }
  if (line.size() > kMaxHeaderLineBytes) {
    return make_error(Errc::kLimitExceeded, "a header field exceeds kMaxHeaderLineBytes");
  }
  block.fields.push_back(
      Field{std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
  return success();
}

Result<> add_line(HeaderBlock& block, std::string_view line) {
  if (line.find('\0') != std::string_view::npos) {
    return make_error(Errc::kCorruption, "NUL byte in a header");
  }
  if (is_wsp(line.front())) return append_continuation(block, line);
  return add_field(block, line);
}

Error unterminated_headers(std::string_view text) {
  if (text.size() > kMaxHeaderBlockBytes) {
    return make_error(Errc::kLimitExceeded, "header block exceeds kMaxHeaderBlockBytes");
  }
  return make_error(Errc::kCorruption, "header block is not terminated by a blank line");
}

bool valid_boundary(std::string_view b) {
  constexpr std::string_view kExtra = "'()+_,-./:=? ";
  if (b.empty() || b.size() > kMaxBoundaryBytes || b.back() == ' ') return false;
  return std::all_of(b.begin(), b.end(), [&](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kExtra.find(c) != std::string_view::npos;
  });
}

std::size_t skip_wsp(std::string_view s, std::size_t pos) {
  while (pos < s.size() && is_wsp(s[pos])) ++pos;
  return pos;
}

// Reads a parameter value (token or quoted-string) starting at `pos`.
Result<std::string> read_param_value(std::string_view s, std::size_t& pos) {
  std::string out;
  if (pos < s.size() && s[pos] == '"') {
    for (++pos; pos < s.size() && s[pos] != '"'; ++pos) {
      if (s[pos] == '\\' && pos + 1 < s.size()) ++pos;
      out.push_back(s[pos]);
    }
    if (pos >= s.size()) return make_error(Errc::kCorruption, "unterminated quoted string");
    ++pos;
    return out;
  }
  while (pos < s.size() && s[pos] != ';' && !is_wsp(s[pos])) out.push_back(s[pos++]);
  return out;
}

// Parses one "; name=value" parameter starting at the ';' at `pos`.
Result<> read_param(std::string_view s, std::size_t& pos, ContentType& ct) {
  pos = skip_wsp(s, pos + 1);
  if (pos >= s.size()) return success();  // a trailing ';' is tolerated
  const std::size_t eq = s.find('=', pos);
  if (eq == std::string_view::npos) {
    return make_error(Errc::kCorruption, "Content-Type parameter without '='");
  }
  const std::string_view name = trim(s.substr(pos, eq - pos));
  pos = skip_wsp(s, eq + 1);
  SQLPOST_TRY_ASSIGN(std::string value, read_param_value(s, pos));
  pos = skip_wsp(s, pos);
  if (pos < s.size() && s[pos] != ';') {
    return make_error(Errc::kCorruption, "malformed Content-Type parameter");
  }
  if (iequals(name, "boundary")) {
    if (ct.boundary) return make_error(Errc::kCorruption, "duplicate MIME boundary parameter");
    if (!valid_boundary(value)) return make_error(Errc::kCorruption, "invalid MIME boundary");
    ct.boundary = std::move(value);
  }
  return success();
}

// Is `line` the delimiter "--boundary" (close: "--boundary--"), allowing trailing padding?
bool is_delimiter(std::string_view line, std::string_view dash_boundary, bool& close) {
  if (line.substr(0, dash_boundary.size()) != dash_boundary) return false;
  std::string_view rest = line.substr(dash_boundary.size());
  close = rest.substr(0, 2) == "--";
  if (close) rest.remove_prefix(2);
  return trim(rest).empty();
}

// Offset of the end of a part: the line end before the delimiter belongs to the delimiter.
std::size_t part_end(std::string_view body, std::size_t delimiter_start, std::size_t part_start) {
  std::size_t end = delimiter_start;
  if (end > part_start && body[end - 1] == '\n') --end;
  if (end > part_start && body[end - 1] == '\r') --end;
  return end;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

Result<HeaderBlock> parse_headers(std::string_view text) {
  const std::string_view window = text.substr(0, kMaxHeaderBlockBytes);
  HeaderBlock block;
  std::size_t pos = 0;
  for (;;) {
    const Line line = read_line(window, pos);
    if (!line.terminated) return unterminated_headers(text);
    pos = line.next;
    if (line.text.empty()) break;
    SQLPOST_TRY(add_line(block, line.text));
  }
  for (Field& f : block.fields) f.value = std::string(trim(f.value));
  block.body_offset = pos;
  return block;
}

Result<std::optional<std::string_view>> unique_field(const HeaderBlock& block,
                                                     std::string_view name) {
  std::optional<std::string_view> found;
  for (const Field& f : block.fields) {
    if (!iequals(f.name, name)) continue;
    if (found) return make_error(Errc::kCorruption, "duplicate header field " + std::string(name));
    found = f.value;
  }
  return found;
}

bool has_header_prefix(std::string_view text, std::string_view prefix) {
  const std::string_view window = text.substr(0, kMaxHeaderBlockBytes);
  for (std::size_t pos = 0; pos < window.size();) {
    const Line line = read_line(window, pos);
    if (line.text.empty()) return false;
    if (istarts_with(line.text, prefix)) return true;
    pos = line.next;
  }
  return false;
}

Result<ContentType> parse_content_type(std::string_view value) {
  ContentType ct;
  std::size_t pos = value.find(';');
  for (const char c : trim(value.substr(0, pos))) ct.type.push_back(lower(c));
  if (ct.type.find('/') == std::string::npos) {
    return make_error(Errc::kCorruption, "Content-Type has no type/subtype");
  }
  while (pos < value.size()) SQLPOST_TRY(read_param(value, pos, ct));
  return ct;
}

Result<std::vector<std::string_view>> split_multipart(std::string_view body,
                                                      std::string_view boundary) {
  const std::string dash_boundary = "--" + std::string(boundary);
  std::vector<std::string_view> parts;
  std::optional<std::size_t> part_start;
  for (std::size_t pos = 0; pos < body.size();) {
    const Line line = read_line(body, pos);
    bool close = false;
    if (is_delimiter(line.text, dash_boundary, close)) {
      if (part_start) {
        parts.push_back(body.substr(*part_start, part_end(body, pos, *part_start) - *part_start));
      }
      if (close && line.terminated) return parts;
      if (close || parts.size() >= kMaxMimeParts) break;
      part_start = line.next;
    }
    pos = line.next;
  }
  if (parts.size() >= kMaxMimeParts) {
    return make_error(Errc::kLimitExceeded, "more than kMaxMimeParts MIME parts");
  }
  return make_error(Errc::kCorruption, "multipart body has no closing delimiter (truncated?)");
}

std::string fold_field(std::string_view name, std::string_view value) {
  std::string out;
  std::string line = std::string(name) + ":";
  std::size_t pos = 0;
  while (pos <= value.size()) {
    std::size_t space = value.find(' ', pos);
    if (space == std::string_view::npos) space = value.size();
    const std::string_view word = value.substr(pos, space - pos);
    pos = space + 1;
    if (word.empty()) continue;
    if (line.size() + 1 + word.size() > kMaxLineChars) {  // fold before this word
      out += line + std::string(kCrlf);
      line.clear();
    }
    line += " ";
    line += word;
  }
  out += line + std::string(kCrlf);
  return out;
}

}  // namespace sqlpost::transport::mime
