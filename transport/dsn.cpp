#include "transport/dsn.h"

#include <algorithm>
#include <cctype>

#include "transport/mime.h"

namespace sqlpost::transport {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string field_or_empty(const mime::HeaderBlock& block, std::string_view name) {
  auto value = mime::unique_field(block, name);
  return value.ok() && value.value() ? std::string(*value.value()) : std::string();
}

// A body part: its headers, its content type (lower case) and its body.
struct BodyPart {
  mime::HeaderBlock headers;
  std::string type;
  std::string_view body;
};

std::optional<BodyPart> open_body_part(std::string_view text) {
  auto headers = mime::parse_headers(text);
  if (!headers.ok()) {
    return std::nullopt;
  }
  BodyPart part{std::move(headers).value(), "text/plain", {}};
  part.body = text.substr(std::min(part.headers.body_offset, text.size()));
  const std::string content_type = field_or_empty(part.headers, "Content-Type");
  if (!content_type.empty()) {
    auto parsed = mime::parse_content_type(content_type);
    if (!parsed.ok()) {
      return std::nullopt;
    }
    part.type = parsed->type;
  }
  return part;
}

constexpr std::size_t kMaxStatusBytes = 8192;

// The delivery-status body: a per-message block, then one block per recipient; the
// first recipient block's fields are read.
void read_delivery_status(std::string_view body, Bounce& out) {
  const std::size_t crlf = body.find("\r\n\r\n");
  const std::size_t blank = crlf != std::string_view::npos ? crlf : body.find("\n\n");
  if (blank == std::string_view::npos) {
    return;
  }
  const std::string_view rest = body.substr(blank);
  const std::size_t start = rest.find_first_not_of("\r\n");
  if (start == std::string_view::npos) {
    return;
  }
  // The last block may end without its blank line (where the MIME part ends).
  const std::string fields = std::string(rest.substr(start, kMaxStatusBytes)) + "\r\n\r\n";
  auto recipient = mime::parse_headers(fields);
  if (!recipient.ok()) {
    return;
  }
  out.action = lower(field_or_empty(recipient.value(), "Action"));
  out.status = field_or_empty(recipient.value(), "Status");
  out.diagnostic = field_or_empty(recipient.value(), "Diagnostic-Code");
  out.recipient = field_or_empty(recipient.value(), "Final-Recipient");
}

}  // namespace

bool Bounce::size_refusal() const {
  const bool size_status =
      status.size() >= 5 && (status.substr(1) == ".3.4" || status.substr(1) == ".2.3");
  return size_status || diagnostic.find(" 552") != std::string::npos ||
         diagnostic.find(";552") != std::string::npos;
}

std::string message_id_of(std::string_view mail) {
  auto headers = mime::parse_headers(mail);
  return headers.ok() ? field_or_empty(headers.value(), "Message-ID") : std::string();
}

std::optional<Bounce> parse_bounce(std::string_view mail) {
  const auto top = open_body_part(mail);
  if (!top || top->type != "multipart/report") {
    return std::nullopt;
  }
  auto content_type = mime::parse_content_type(field_or_empty(top->headers, "Content-Type"));
  if (!content_type.ok() || !content_type->boundary) {
    return std::nullopt;
  }
  auto parts = mime::split_multipart(top->body, *content_type->boundary);
  if (!parts.ok()) {
    return std::nullopt;
  }
  Bounce bounce;
  bool original_found = false;
  for (const std::string_view text : parts.value()) {
    const auto part = open_body_part(text);
    if (!part) {
      continue;
    }
    if (part->type == "message/delivery-status") {
      read_delivery_status(part->body, bounce);
    } else if (part->type == "message/rfc822" || part->type == "text/rfc822-headers") {
      auto header = peek_part(part->body);
      if (header.ok()) {
        bounce.original = std::move(header).value();
        bounce.message_id = message_id_of(part->body);
        original_found = true;
      }
    }
  }
  if (!original_found || bounce.action.empty()) {
    return std::nullopt;
  }
  return bounce;
}

}  // namespace sqlpost::transport
