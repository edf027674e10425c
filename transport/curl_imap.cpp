#include "transport/curl_imap.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

#include "transport/limits.h"

namespace sqlpost::transport {
namespace {

struct FetchLine {
  std::string uid;
  std::size_t size = 0;
  bool seen = false;
};

bool digits(std::string_view text) {
  return !text.empty() && text.size() <= 10 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Printable ASCII: IMAP names beyond it are modified UTF-7, which the user writes.
bool mailbox_char(char c) { return c >= 0x20 && c <= 0x7e; }

// The mailbox as a URL path: every '/'-separated level escaped on its own, so that
// spaces, ';', '%' and '?' in a folder name reach the server as written.
std::string mailbox_path(std::string_view box) {
  std::string out;
  for (std::size_t start = 0;;) {
    const std::size_t slash = box.find('/', start);
    out += url_segment(box.substr(start, slash - start));
    if (slash == std::string_view::npos) {
      return out;
    }
    out += '/';
    start = slash + 1;
  }
}

// The number following "<name> " inside a FETCH item list.
std::optional<std::string_view> item(std::string_view line, std::string_view name) {
  for (std::size_t at = line.find(name); at != std::string_view::npos;
       at = line.find(name, at + 1)) {
    const bool starts = at > 0 && (line[at - 1] == '(' || line[at - 1] == ' ');
    const std::size_t value = at + name.size();
    if (starts && value < line.size() && line[value] == ' ') {
      const std::string_view rest = line.substr(value + 1);
      return rest.substr(0, rest.find_first_of(" )"));
    }
  }
  return std::nullopt;
}

// "* <seq> FETCH (UID <uid> RFC822.SIZE <size> FLAGS (...))"
Result<FetchLine> parse_fetch(std::string_view line) {
  const auto uid = item(line, "UID");
  const auto size = item(line, "RFC822.SIZE");
  FetchLine parsed;
  unsigned long long bytes = 0;
  if (line.rfind("* ", 0) != 0 || line.find(" FETCH (") == std::string_view::npos || !uid ||
      !digits(*uid) || !size || !digits(*size) ||
      std::from_chars(size->data(), size->data() + size->size(), bytes).ec != std::errc()) {
    return make_error(Errc::kCorruption, "malformed IMAP FETCH reply line");
  }
  parsed.uid = std::string(*uid);
  parsed.size = static_cast<std::size_t>(bytes);
  const std::size_t flags = line.find("FLAGS (");
  const std::size_t flags_end = line.find(')', flags);
  parsed.seen = flags != std::string_view::npos &&
                line.substr(flags, flags_end - flags).find("\\Seen") != std::string_view::npos;
  return parsed;
}

Result<std::vector<FetchLine>> parse_fetch_listing(std::string_view body) {
  std::vector<FetchLine> lines;
  for (const std::string_view line : reply_lines(body)) {
    SQLPOST_TRY_ASSIGN(FetchLine parsed, parse_fetch(line));
    lines.push_back(std::move(parsed));
  }
  return lines;
}

}  // namespace

Result<std::string> imap_mailbox_url(const MailServer& server, std::string_view box) {
  if (box.empty() || box.size() > 200 || !std::all_of(box.begin(), box.end(), mailbox_char)) {
    return make_error(Errc::kConfig, "IMAP mailbox name '" + std::string(box.substr(0, 200)) +
                                         "' is not 1..200 printable ASCII characters (write "
                                         "other characters in IMAP's modified UTF-7)");
  }
  return make_url(MailProtocol::kImap, server, mailbox_path(box));
}

Result<std::unique_ptr<ImapLink>> ImapLink::open(ImapConfig config) {
  SQLPOST_TRY(check_server(config.server));
  const std::string& box = config.mailbox;
  SQLPOST_TRY_ASSIGN(std::string url, imap_mailbox_url(config.server, box));
  return std::make_unique<ImapLink>(std::move(config), std::move(url));
}

ImapLink::ImapLink(ImapConfig config, std::string mailbox_url)
    : config_(std::move(config)), mailbox_url_(std::move(mailbox_url)) {}

Result<> ImapLink::send(std::string_view /*to_address*/, std::string_view /*mail*/) {
  return make_error(Errc::kUnsupported, "an IMAP link only reads a mailbox; it cannot send");
}

Result<CurlEasy*> ImapLink::handle() {
  if (!easy_) {
    SQLPOST_TRY_ASSIGN(easy_, CurlEasy::create());
    apply_server(*easy_, MailProtocol::kImap, config_.server);
  }
  return easy_.get();
}

// An empty `custom` fetches the URL (a message by ;UID=n).
Result<> ImapLink::command(const std::string& url, const std::string& custom,
                           std::string_view what) {
  SQLPOST_TRY_ASSIGN(CurlEasy * easy, handle());
  easy->set(CURLOPT_URL, url.c_str());
  easy->set(CURLOPT_CUSTOMREQUEST, custom.empty() ? nullptr : custom.c_str());
  const CURLcode rc = easy->perform();
  if (rc != CURLE_OK) {
    Error error = mail_error(*easy, rc,
                             "IMAP " + std::string(what) + " in " + config_.mailbox + " at " +
                                 server_name(MailProtocol::kImap, config_.server));
    easy_.reset();
    return error;
  }
  return success();
}

Result<std::vector<MailRef>> ImapLink::list() {
  SQLPOST_TRY(command(mailbox_url_, "UID FETCH 1:* (RFC822.SIZE FLAGS)", "UID FETCH"));
  SQLPOST_TRY_ASSIGN(auto lines, parse_fetch_listing(easy_->body()));
  std::sort(lines.begin(), lines.end(), [](const FetchLine& a, const FetchLine& b) {
    return a.uid.size() != b.uid.size() ? a.uid.size() < b.uid.size() : a.uid < b.uid;
  });
  unseen_.clear();
  std::vector<MailRef> refs;
  refs.reserve(lines.size());
  for (FetchLine& line : lines) {
    if (!line.seen) {
      unseen_.insert(line.uid);
    }
    refs.push_back(MailRef{std::move(line.uid), line.size});
  }
  return refs;
}

// Fetching sets \\Seen: mail the last list() saw unseen is made unseen again (best
// effort), so foreign mail keeps its state.
void ImapLink::keep_unseen(const MailRef& ref) {
  if (unseen_.count(ref.id) != 0) {
    (void)command(mailbox_url_, "UID STORE " + ref.id + " -FLAGS.SILENT (\\Seen)", "UID STORE");
  }
}

Result<std::string> ImapLink::fetch(const MailRef& ref) {
  if (!digits(ref.id)) {
    return make_error(Errc::kInvalidArgument, "'" + ref.id.substr(0, 80) + "' is not an IMAP UID");
  }
  if (ref.size > kMaxMailBytes) {
    return make_error(Errc::kLimitExceeded, "mail " + ref.id + " has " + std::to_string(ref.size) +
                                                " bytes, more than kMaxMailBytes");
  }
  SQLPOST_TRY(command(mailbox_url_ + "/;UID=" + ref.id, {}, "FETCH"));
  std::string mail = easy_->take_body();
  if (mail.empty()) {
    return make_error(Errc::kNotFound,
                      "mail " + ref.id + " is no longer in IMAP mailbox " + config_.mailbox);
  }
  keep_unseen(ref);
  return mail;
}

Result<std::string> ImapLink::fetch_head(const MailRef& ref, std::size_t max_bytes) {
  if (!digits(ref.id)) {
    return make_error(Errc::kInvalidArgument, "'" + ref.id.substr(0, 80) + "' is not an IMAP UID");
  }
  SQLPOST_TRY_ASSIGN(CurlEasy * easy, handle());
  easy->set_body_limit(max_bytes);
  auto fetched = command(mailbox_url_ + "/;UID=" + ref.id + "/;SECTION=HEADER", {}, "FETCH");
  if (easy_) {
    easy_->set_body_limit(kMaxMailBytes);
  }
  SQLPOST_TRY(fetched);
  std::string head = easy_->take_body();
  if (head.empty()) {
    return make_error(Errc::kNotFound,
                      "mail " + ref.id + " is no longer in IMAP mailbox " + config_.mailbox);
  }
  keep_unseen(ref);
  return head;
}

Result<> ImapLink::remove(const MailRef& ref) {
  if (!digits(ref.id)) {
    return make_error(Errc::kInvalidArgument, "'" + ref.id.substr(0, 80) + "' is not an IMAP UID");
  }
  SQLPOST_TRY(
      command(mailbox_url_, "UID STORE " + ref.id + " +FLAGS.SILENT (\\Deleted)", "UID STORE"));
  if (command(mailbox_url_, "UID EXPUNGE " + ref.id, "UID EXPUNGE")) {
    return success();
  }
  return command(mailbox_url_, "EXPUNGE", "EXPUNGE");
}

}  // namespace sqlpost::transport
