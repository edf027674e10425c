#include "transport/codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <optional>

#include <openssl/crypto.h>

#include "common/hex.h"
#include "platform/process.h"
#include "transport/compress.h"
#include "transport/envelope.h"
#include "transport/mime.h"

namespace sqlpost::transport {
namespace {

constexpr std::string_view kCrlf = mime::kCrlf;
constexpr std::string_view kBoundary = "=_sqlpost_boundary_=";
constexpr std::size_t kB64LineChars = 76;  // base64 characters per line
constexpr std::size_t kB64LineBytes = 57;  // raw bytes per full base64 line
constexpr std::size_t kSizeMargin = 64;    // slack for header length estimates
constexpr std::size_t kSealOverhead = crypto::kNonceBytes + crypto::kTagBytes;

// ---- writing ------------------------------------------------------------------

Result<> check_address(std::string_view address) {
  const bool printable =
      std::all_of(address.begin(), address.end(), [](char c) { return c >= ' ' && c < 127; });
  if (address.empty() || address.size() > kMaxAddressBytes || !printable) {
    return make_error(Errc::kInvalidArgument,
                      "e-mail address must be 1..kMaxAddressBytes printable ASCII characters");
  }
  return success();
}

Result<> check_message(const MessageHeader& h, std::size_t payload_bytes,
                       std::size_t max_message_bytes) {
  if (!valid_site_name(h.sender) || !valid_site_name(h.receiver)) {
    return make_error(Errc::kInvalidArgument,
                      "site names must be 1..64 characters of [A-Za-z0-9._-]");
  }
  if (max_message_bytes < kMinMaxMessageBytes) {
    return make_error(Errc::kInvalidArgument, "max_message_bytes is below the minimum of " +
                                                  std::to_string(kMinMaxMessageBytes));
  }
  if (payload_bytes > kMaxPayloadBytes) {
    return make_error(Errc::kLimitExceeded, "payload exceeds kMaxPayloadBytes");
  }
  return success();
}

std::string rfc5322_date(std::time_t t) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::tm tm = platform::utc_time(t);
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), "%s, %02d %s %04d %02d:%02d:%02d +0000",
                              kDays.at(static_cast<std::size_t>(tm.tm_wday)), tm.tm_mday,
                              kMonths.at(static_cast<std::size_t>(tm.tm_mon)), tm.tm_year + 1900,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
  return n > 0 ? std::string(buf.data()) : std::string();
}

// <sqlpost.A+B.n.i.k@sqlpost>, or with the pair hashed when that line would be too long.
std::string message_id(const PartHeader& h) {
  const std::string numbers = "." + std::to_string(h.sequence) + "." + std::to_string(h.part) +
                              "." + std::to_string(h.parts) + "@sqlpost>";
  std::string id = "<sqlpost." + h.sender + "+" + h.receiver + numbers;
  if (id.size() + 1 <= mime::kMaxLineChars) return id;
  const std::string pair = h.sender + "+" + h.receiver;
  const auto digest =
      crypto::sha256(std::span(reinterpret_cast<const std::uint8_t*>(pair.data()), pair.size()));
  return "<sqlpost.h" + hex_encode(std::span(digest).first(8)) + numbers;
}

struct MailContext {
  std::string_view from;
  std::string_view to;
  std::string date;
};

std::string top_headers(const MailContext& c, const PartHeader& h) {
  const std::string n = std::to_string(h.sequence);
  const std::string i = std::to_string(h.part);
  const std::string k = std::to_string(h.parts);
  std::string out;
  out += mime::fold_field("From", c.from);
  out += mime::fold_field("To", c.to);
  out += mime::fold_field("Subject", "sqlpost message #" + n + " part " + i + "/" + k + " from " +
                                         h.sender + " to " + h.receiver);
  out += mime::fold_field("Date", c.date);
  out += mime::fold_field("Message-ID", message_id(h));
  out += mime::fold_field("MIME-Version", "1.0");
  out += mime::fold_field("X-Sqlpost-Version", std::to_string(kFormatVersion));
  out += mime::fold_field("X-Sqlpost-Sender", h.sender);
  out += mime::fold_field("X-Sqlpost-Receiver", h.receiver);
  out += mime::fold_field("X-Sqlpost-Sequence", n);
  out += mime::fold_field("X-Sqlpost-Part", i);
  out += mime::fold_field("X-Sqlpost-Parts", k);
  out += mime::fold_field("Content-Type",
                          "multipart/mixed; boundary=\"" + std::string(kBoundary) + "\"");
  return out;
}

std::string text_part(const PartHeader& h) {
  std::string out = "--" + std::string(kBoundary) + std::string(kCrlf);
  out += "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";
  out += "This is an sqlpost replication message.\r\n";
  out += "From site: " + h.sender + "\r\nTo site: " + h.receiver + "\r\n";
  out += "Message " + std::to_string(h.sequence) + ", part " + std::to_string(h.part) + " of " +
         std::to_string(h.parts) + ".\r\n";
  out += "It is read by the sqlpost agent: do not delete, edit or forward it.\r\n";
  return out;
}

std::string wrap_base64(std::string_view b64) {
  std::string out;
  out.reserve(b64.size() + (b64.size() / kB64LineChars + 1) * 2);
  for (std::size_t pos = 0; pos < b64.size(); pos += kB64LineChars) {
    out.append(b64.substr(pos, kB64LineChars));
    out.append(kCrlf);
  }
  return out;
}

std::string attachment_part(const PartHeader& h, std::string_view wrapped_b64) {
  const std::string name = "sqlpost-" + std::to_string(h.sequence) + "-" + std::to_string(h.part) +
                           "-" + std::to_string(h.parts) + ".bin";
  std::string out = "--" + std::string(kBoundary) + std::string(kCrlf);
  out += mime::fold_field("Content-Type", "application/octet-stream; name=\"" + name + "\"");
  out += "Content-Transfer-Encoding: base64\r\n";
  out += mime::fold_field("Content-Disposition", "attachment; filename=\"" + name + "\"");
  out += kCrlf;
  out += wrapped_b64;
  out += "--" + std::string(kBoundary) + "--" + std::string(kCrlf);
  return out;
}

std::string build_mail(const MailContext& c, const PartHeader& h, std::string_view wrapped_b64) {
  std::string mail = top_headers(c, h);
  mail += kCrlf;
  mail += "This is a multi-part message in MIME format.\r\n";
  mail += text_part(h);
  mail += attachment_part(h, wrapped_b64);
  return mail;
}

// Size of `raw` bytes once base64-encoded and wrapped (each line ends in CRLF).
std::size_t wrapped_size(std::size_t raw) {
  const std::size_t chars = (raw + 2) / 3 * 4;
  return chars + (chars + kB64LineChars - 1) / kB64LineChars * 2;
}

// The most raw attachment bytes whose wrapped base64 fits in `budget` bytes.
std::size_t max_raw_for(std::size_t budget) {
  const std::size_t line_bytes = kB64LineChars + 2;
  std::size_t raw = budget / line_bytes * kB64LineBytes;
  const std::size_t rest = budget % line_bytes;
  if (rest >= 6) raw += (rest - 2) / 4 * 3;
  while (raw > 0 && wrapped_size(raw) > budget) --raw;
  return raw;
}

// The largest compressed slice per part that keeps every e-mail within the limit.
Result<std::size_t> slice_capacity(const MailContext& c, const MessageHeader& m,
                                   std::size_t max_message_bytes) {
  const PartHeader widest{kFormatVersion, m.sender, m.receiver, m.sequence, kMaxParts, kMaxParts};
  const std::size_t overhead = build_mail(c, widest, "").size() + kSizeMargin;
  const std::size_t fixed = envelope::size_for(m.sender.size(), m.receiver.size()) + kSealOverhead;
  const std::size_t raw =
      overhead < max_message_bytes ? max_raw_for(max_message_bytes - overhead) : 0;
  if (raw <= fixed) {
    return make_error(Errc::kInvalidArgument, "max_message_bytes leaves no room for data");
  }
  return raw - fixed;
}

Result<std::string> seal_part(const envelope::Envelope& env, std::span<const std::uint8_t> slice,
                              const Key& key) {
  std::vector<std::uint8_t> bytes = envelope::serialize(env);
  const std::size_t ad_size = bytes.size();
  crypto::Nonce nonce{};
  SQLPOST_TRY(crypto::random_bytes(nonce));
  SQLPOST_TRY_ASSIGN(const auto sealed,
                     crypto::seal(key, nonce, std::span(bytes).first(ad_size), slice));
  bytes.insert(bytes.end(), nonce.begin(), nonce.end());
  bytes.insert(bytes.end(), sealed.begin(), sealed.end());
  return crypto::base64_encode(bytes);
}

// ---- reading ------------------------------------------------------------------

Result<std::string_view> required(const mime::HeaderBlock& block, std::string_view name) {
  SQLPOST_TRY_ASSIGN(const auto value, mime::unique_field(block, name));
  if (!value) return make_error(Errc::kCorruption, "missing header " + std::string(name));
  return *value;
}

Result<std::uint64_t> required_number(const mime::HeaderBlock& block, std::string_view name,
                                      std::uint64_t min, std::uint64_t max) {
  SQLPOST_TRY_ASSIGN(const std::string_view text, required(block, name));
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  const bool digits_only = !text.empty() && text.front() >= '0' && text.front() <= '9';
  if (!digits_only || ec != std::errc() || ptr != end || value < min || value > max) {
    return make_error(Errc::kCorruption, "header " + std::string(name) + " is not a number in " +
                                             std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

Result<std::string> required_site(const mime::HeaderBlock& block, std::string_view name) {
  SQLPOST_TRY_ASSIGN(const std::string_view text, required(block, name));
  if (!valid_site_name(text)) {
    return make_error(Errc::kCorruption, "header " + std::string(name) + " is not a site name");
  }
  return std::string(text);
}

Result<PartHeader> part_header(const mime::HeaderBlock& block) {
  PartHeader h;
  SQLPOST_TRY_ASSIGN(const auto version,
                     required_number(block, "X-Sqlpost-Version", 0, UINT32_MAX));
  if (version != kFormatVersion) {
    return make_error(Errc::kUnsupported, "sqlpost format version " + std::to_string(version) +
                                              " is not supported by this build");
  }
  SQLPOST_TRY_ASSIGN(h.sender, required_site(block, "X-Sqlpost-Sender"));
  SQLPOST_TRY_ASSIGN(h.receiver, required_site(block, "X-Sqlpost-Receiver"));
  SQLPOST_TRY_ASSIGN(h.sequence, required_number(block, "X-Sqlpost-Sequence", 0, UINT64_MAX));
  SQLPOST_TRY_ASSIGN(const auto parts, required_number(block, "X-Sqlpost-Parts", 1, kMaxParts));
  SQLPOST_TRY_ASSIGN(const auto part, required_number(block, "X-Sqlpost-Part", 1, parts));
  h.parts = static_cast<std::uint32_t>(parts);
  h.part = static_cast<std::uint32_t>(part);
  return h;
}

Result<mime::HeaderBlock> mail_headers(std::string_view mail) {
  if (mail.size() > kMaxMailBytes) {
    return make_error(Errc::kLimitExceeded, "mail is larger than kMaxMailBytes");
  }
  return mime::parse_headers(mail);
}

// Is this MIME body part the application/octet-stream attachment? Returns its base64 text.
Result<std::optional<std::string_view>> attachment_of(std::string_view part) {
  SQLPOST_TRY_ASSIGN(const mime::HeaderBlock block, mime::parse_headers(part));
  SQLPOST_TRY_ASSIGN(const auto type, mime::unique_field(block, "Content-Type"));
  if (!type) return std::optional<std::string_view>();
  SQLPOST_TRY_ASSIGN(const mime::ContentType ct, mime::parse_content_type(*type));
  if (ct.type != "application/octet-stream") return std::optional<std::string_view>();
  SQLPOST_TRY_ASSIGN(const auto cte, mime::unique_field(block, "Content-Transfer-Encoding"));
  if (!cte || !mime::iequals(*cte, "base64")) {
    return make_error(Errc::kCorruption, "the attachment is not base64-encoded");
  }
  return std::optional(part.substr(block.body_offset));
}

Result<std::string_view> find_attachment(std::string_view mail, const mime::HeaderBlock& block) {
  SQLPOST_TRY_ASSIGN(const std::string_view type, required(block, "Content-Type"));
  SQLPOST_TRY_ASSIGN(const mime::ContentType ct, mime::parse_content_type(type));
  if (ct.type != "multipart/mixed" || !ct.boundary) {
    return make_error(Errc::kCorruption, "mail is not multipart/mixed with a boundary");
  }
  SQLPOST_TRY_ASSIGN(const auto parts,
                     mime::split_multipart(mail.substr(block.body_offset), *ct.boundary));
  std::optional<std::string_view> found;
  for (const std::string_view part : parts) {
    SQLPOST_TRY_ASSIGN(const auto attachment, attachment_of(part));
    if (!attachment) continue;
    if (found) return make_error(Errc::kCorruption, "mail has more than one attachment");
    found = attachment;
  }
  if (!found) return make_error(Errc::kCorruption, "mail has no application/octet-stream part");
  return *found;
}

std::string strip_line_ends(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::copy_if(text.begin(), text.end(), std::back_inserter(out),
               [](char c) { return c != '\r' && c != '\n'; });
  return out;
}

Result<> check_envelope_matches(const PartHeader& h, const envelope::Envelope& env) {
  const PartHeader& e = env.header;
  if (e.sender != h.sender || e.receiver != h.receiver || e.sequence != h.sequence ||
      e.part != h.part || e.parts != h.parts) {
    return make_error(Errc::kCorruption,
                      "X-Sqlpost headers do not match the authenticated envelope");
  }
  return success();
}

Result<OpenedPart> decrypt_attachment(std::span<const std::uint8_t> bytes, const PartHeader& h,
                                      const Key& key) {
  SQLPOST_TRY_ASSIGN(const envelope::Parsed parsed, envelope::parse(bytes));
  SQLPOST_TRY(check_envelope_matches(h, parsed.env));
  const auto rest = bytes.subspan(parsed.size);
  if (rest.size() < kSealOverhead) {
    return make_error(Errc::kCorruption, "attachment is too short for nonce and tag");
  }
  const std::uint64_t slice = rest.size() - kSealOverhead;
  if (slice > parsed.env.compressed_size - parsed.env.offset) {
    return make_error(Errc::kCorruption, "part extends beyond the message's compressed size");
  }
  crypto::Nonce nonce{};
  std::copy_n(rest.begin(), crypto::kNonceBytes, nonce.begin());
  SQLPOST_TRY_ASSIGN(auto data, crypto::open(key, nonce, bytes.first(parsed.size),
                                             rest.subspan(crypto::kNonceBytes)));
  return OpenedPart{parsed.env.header, parsed.env.compressed_size, parsed.env.offset,
                    parsed.env.digest, std::move(data)};
}

// ---- reassembly -----------------------------------------------------------------

Result<> check_set(const std::vector<OpenedPart>& parts) {
  if (parts.empty()) return make_error(Errc::kInvalidArgument, "no parts to reassemble");
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (!same_message(parts.front(), parts[i])) {
      return make_error(Errc::kInvalidArgument, "parts belong to different messages");
    }
    if (i > 0 && parts[i].header.part == parts[i - 1].header.part) {
      return make_error(Errc::kInvalidArgument,
                        "part " + std::to_string(parts[i].header.part) + " given twice");
    }
  }
  for (std::uint32_t i = 0; i < parts.front().header.parts; ++i) {
    if (i >= parts.size() || parts[i].header.part != i + 1) {
      return make_error(Errc::kNotFound, "part " + std::to_string(i + 1) + " of " +
                                             std::to_string(parts.front().header.parts) +
                                             " is missing");
    }
  }
  return success();
}

Result<std::vector<std::uint8_t>> concatenate(const std::vector<OpenedPart>& parts) {
  std::vector<std::uint8_t> out;
  for (const OpenedPart& p : parts) {
    if (p.offset != out.size()) {
      return make_error(Errc::kCorruption, "part offsets are not contiguous");
    }
    out.insert(out.end(), p.data.begin(), p.data.end());
  }
  if (out.size() != parts.front().compressed_size) {
    return make_error(Errc::kCorruption, "parts do not add up to the compressed size");
  }
  if (crypto::sha256(out) != parts.front().digest) {
    return make_error(Errc::kCorruption, "digest of the reassembled message does not match");
  }
  return out;
}

}  // namespace

bool valid_site_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxSiteNameBytes &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

Result<std::uint32_t> encode_parts(const MessageHeader& header, std::string_view from_address,
                                   std::string_view to_address, const CompressedMessage& message,
                                   ByteSource& compressed, const Key& key,
                                   std::size_t max_message_bytes, const PartSink& sink) {
  SQLPOST_TRY(check_message(header, 0, max_message_bytes));
  SQLPOST_TRY(check_address(from_address));
  SQLPOST_TRY(check_address(to_address));
  const MailContext ctx{from_address, to_address, rfc5322_date(std::time(nullptr))};
  SQLPOST_TRY_ASSIGN(const std::size_t capacity, slice_capacity(ctx, header, max_message_bytes));
  const std::uint64_t count = std::max<std::uint64_t>(1, (message.size + capacity - 1) / capacity);
  if (count > kMaxParts) {
    return make_error(Errc::kLimitExceeded, "message needs more than kMaxParts parts");
  }
  envelope::Envelope env{{kFormatVersion, header.sender, header.receiver, header.sequence, 0,
                          static_cast<std::uint32_t>(count)},
                         message.size,
                         0,
                         message.digest};
  std::vector<std::uint8_t> slice;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::uint64_t end = message.size * (i + 1) / count;  // even split
    env.header.part = static_cast<std::uint32_t>(i + 1);
    slice.resize(static_cast<std::size_t>(end - env.offset));
    std::size_t filled = 0;
    while (filled < slice.size()) {
      SQLPOST_TRY_ASSIGN(const std::size_t n, compressed.read(std::span(slice).subspan(filled)));
      if (n == 0) {
        return make_error(Errc::kInternal, "compressed message shorter than announced");
      }
      filled += n;
    }
    SQLPOST_TRY_ASSIGN(const std::string b64, seal_part(env, slice, key));
    std::string mail = build_mail(ctx, env.header, wrap_base64(b64));
    if (mail.size() > max_message_bytes) {
      return make_error(Errc::kInternal, "encoded part exceeds max_message_bytes");
    }
    SQLPOST_TRY(sink(env.header.part, env.header.parts, std::move(mail)));
    env.offset = end;
  }
  return static_cast<std::uint32_t>(count);
}

Result<std::vector<std::string>> encode_message(const MessageHeader& header,
                                                std::string_view from_address,
                                                std::string_view to_address,
                                                std::span<const std::uint8_t> payload,
                                                const Key& key, std::size_t max_message_bytes) {
  SQLPOST_TRY(check_message(header, payload.size(), max_message_bytes));
  SQLPOST_TRY_ASSIGN(const auto compressed, zstd::compress(payload));
  const CompressedMessage message{compressed.size(), crypto::sha256(compressed)};
  SpanSource source(compressed);
  std::vector<std::string> mails;
  SQLPOST_TRY(encode_parts(header, from_address, to_address, message, source, key,
                           max_message_bytes,
                           [&](std::uint32_t /*part*/, std::uint32_t /*parts*/, std::string mail) {
                             mails.push_back(std::move(mail));
                             return success();
                           }));
  return mails;
}

namespace {

constexpr std::string_view kFreshIdPrefix = "<sqlpost.";
constexpr std::string_view kFreshIdSuffix = "@sqlpost>";
constexpr std::size_t kFreshIdHalf = 8;  // bytes of nonce, and of tag

std::string fresh_id_tag(std::span<const std::uint8_t> nonce, const PartHeader& part,
                         const Key& key) {
  std::string data(nonce.begin(), nonce.end());
  data += '\0' + part.sender + '\0' + part.receiver + '\0' + std::to_string(part.sequence) + '\0' +
          std::to_string(part.part) + '\0' + std::to_string(part.parts);
  const auto mac = crypto::hmac_sha256(
      key, std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
  return hex_encode(std::span(mac).first(kFreshIdHalf));
}

}  // namespace

Result<std::string> with_fresh_message_id(std::string_view mail, const Key& key) {
  constexpr std::string_view kField = "\r\nMessage-ID: ";
  const std::size_t end_of_headers = mail.find("\r\n\r\n");
  const std::size_t at = mail.find(kField);
  if (at == std::string_view::npos || at >= end_of_headers) {
    return make_error(Errc::kCorruption, "the mail has no Message-ID");
  }
  SQLPOST_TRY_ASSIGN(const PartHeader part, peek_part(mail));
  const std::size_t value = at + kField.size();
  const std::size_t line_end = mail.find("\r\n", value);
  std::array<std::uint8_t, kFreshIdHalf> nonce{};
  SQLPOST_TRY(crypto::random_bytes(nonce));
  std::string out(mail.substr(0, value));
  out += std::string(kFreshIdPrefix) + hex_encode(nonce) + "." + fresh_id_tag(nonce, part, key) +
         std::string(kFreshIdSuffix);
  out += mail.substr(line_end);
  return out;
}

bool message_id_is_ours(std::string_view message_id, const PartHeader& part, const Key& key) {
  constexpr std::size_t kHex = kFreshIdHalf * 2;
  if (message_id.size() != kFreshIdPrefix.size() + kHex + 1 + kHex + kFreshIdSuffix.size() ||
      !message_id.starts_with(kFreshIdPrefix) || !message_id.ends_with(kFreshIdSuffix)) {
    return false;
  }
  const std::string_view nonce_hex = message_id.substr(kFreshIdPrefix.size(), kHex);
  const std::string_view tag = message_id.substr(kFreshIdPrefix.size() + kHex + 1, kHex);
  std::array<std::uint8_t, kFreshIdHalf> nonce{};
  if (!hex_decode(nonce_hex, nonce) || message_id[kFreshIdPrefix.size() + kHex] != '.') {
    return false;
  }
  const std::string expected = fresh_id_tag(nonce, part, key);
  return CRYPTO_memcmp(expected.data(), tag.data(), kHex) == 0;
}

Result<std::string> compose_notice(std::string_view from, std::string_view to,
                                   std::string_view subject, std::string_view body) {
  for (const std::string_view field : {from, to, subject}) {
    if (field.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return make_error(Errc::kInvalidArgument, "a notice's address or subject has a line break");
    }
  }
  std::array<std::uint8_t, 16> random{};
  SQLPOST_TRY(crypto::random_bytes(random));
  std::string mail = mime::fold_field("From", "<" + std::string(from) + ">");
  mail += mime::fold_field("To", "<" + std::string(to) + ">");
  mail += mime::fold_field("Subject", subject);
  mail += mime::fold_field("Date", rfc5322_date(std::time(nullptr)));
  mail += mime::fold_field("Message-ID", "<sqlpost-notice." + hex_encode(random) + "@sqlpost>");
  mail +=
      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: 8bit\r\n\r\n";
  std::size_t start = 0;
  while (start < body.size()) {
    const std::size_t end = body.find('\n', start);
    std::string_view line = body.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    mail.append(line).append("\r\n");
    start = end == std::string_view::npos ? body.size() : end + 1;
  }
  return mail;
}

bool looks_like_sqlpost(std::string_view mail) {
  return mime::has_header_prefix(mail, "X-Sqlpost-");
}

Result<PartHeader> peek_part(std::string_view mail) {
  SQLPOST_TRY_ASSIGN(const mime::HeaderBlock block, mail_headers(mail));
  return part_header(block);
}

Result<OpenedPart> open_part(std::string_view mail, const Key& key,
                             std::string_view expected_receiver) {
  SQLPOST_TRY_ASSIGN(const mime::HeaderBlock block, mail_headers(mail));
  SQLPOST_TRY_ASSIGN(const PartHeader header, part_header(block));
  if (header.receiver != expected_receiver) {
    return make_error(Errc::kInvalidArgument, "part is addressed to site '" + header.receiver +
                                                  "', not to '" + std::string(expected_receiver) +
                                                  "'");
  }
  SQLPOST_TRY_ASSIGN(const std::string_view attachment, find_attachment(mail, block));
  SQLPOST_TRY_ASSIGN(const auto bytes, crypto::base64_decode(strip_line_ends(attachment)));
  return decrypt_attachment(bytes, header, key);
}

bool same_message(const OpenedPart& a, const OpenedPart& b) {
  return a.header.version == b.header.version && a.header.sender == b.header.sender &&
         a.header.receiver == b.header.receiver && a.header.sequence == b.header.sequence &&
         a.header.parts == b.header.parts && a.compressed_size == b.compressed_size &&
         a.digest == b.digest;
}

Result<std::vector<std::uint8_t>> reassemble(std::vector<OpenedPart> parts,
                                             std::size_t max_payload_bytes) {
  std::sort(parts.begin(), parts.end(),
            [](const OpenedPart& a, const OpenedPart& b) { return a.header.part < b.header.part; });
  SQLPOST_TRY(check_set(parts));
  SQLPOST_TRY_ASSIGN(const auto compressed, concatenate(parts));
  return zstd::decompress(compressed, std::min(max_payload_bytes, kMaxPayloadBytes));
}

}  // namespace sqlpost::transport
