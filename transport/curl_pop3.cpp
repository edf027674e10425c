#include "transport/curl_pop3.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "transport/limits.h"

namespace sqlpost::transport {
namespace {

struct Line {
  long number = 0;
  std::string_view value;
};

bool uidl_ok(std::string_view uid) {
  if (uid.empty() || uid.size() > kMaxUidlBytes) {
    return false;
  }
  for (const char c : uid) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

bool parse_number(std::string_view text, long& out) {
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && out > 0;
}

// One "<number> <value>" line of a UIDL or LIST listing (CR already removed).
Result<Line> parse_line(std::string_view line) {
  const std::size_t space = line.find(' ');
  Line parsed;
  if (space == std::string_view::npos || !parse_number(line.substr(0, space), parsed.number)) {
    return make_error(Errc::kCorruption, "malformed POP3 listing line");
  }
  parsed.value = line.substr(space + 1);
  return parsed;
}

// Every non-empty line of a multi-line POP3 reply body.
Result<std::vector<Line>> parse_listing(std::string_view body) {
  std::vector<Line> lines;
  for (const std::string_view line : reply_lines(body)) {
    SQLPOST_TRY_ASSIGN(Line parsed, parse_line(line));
    lines.push_back(parsed);
  }
  return lines;
}

}  // namespace

Result<std::unique_ptr<Pop3Link>> Pop3Link::open(MailServer server) {
  SQLPOST_TRY(check_server(server));
  std::string url = server_url(MailProtocol::kPop3, server);
  return std::make_unique<Pop3Link>(std::move(server), std::move(url));
}

Pop3Link::Pop3Link(MailServer server, std::string base_url)
    : server_(std::move(server)), base_url_(std::move(base_url)) {}

Pop3Link::~Pop3Link() { end_session(); }

Result<> Pop3Link::send(std::string_view /*to_address*/, std::string_view /*mail*/) {
  return make_error(Errc::kUnsupported, "a POP3 link only reads a mailbox; it cannot send");
}

Result<> Pop3Link::begin_session() {
  end_session();
  SQLPOST_TRY_ASSIGN(session_, CurlEasy::create());
  apply_server(*session_, MailProtocol::kPop3, server_);
  return success();
}

void Pop3Link::end_session() {
  session_.reset();  // curl_easy_cleanup: QUIT on a live connection commits DELEs
  connected_ = false;
  index_.clear();
  order_.clear();
  pending_deletions_ = 0;
}

Result<> Pop3Link::command(const std::string& path, const char* custom, bool nobody,
                           std::string_view what) {
  const std::string url = base_url_ + path;
  session_->set(CURLOPT_URL, url.c_str());
  session_->set(CURLOPT_CUSTOMREQUEST, custom);
  session_->set(CURLOPT_NOBODY, nobody ? 1L : 0L);
  const CURLcode rc = session_->perform();
  const std::string name =
      "POP3 " + std::string(what) + " at " + server_name(MailProtocol::kPop3, server_);
  if (rc != CURLE_OK) {
    Error error = mail_error(*session_, rc, name);
    end_session();
    return error;
  }
  if (connected_ && session_->new_connections() > 0) {
    // A new connection is a new session: its message numbers are not ours. Undo.
    session_->set(CURLOPT_CUSTOMREQUEST, "RSET");
    session_->set(CURLOPT_NOBODY, 1L);
    (void)session_->perform();
    end_session();
    return make_error(Errc::kTransient,
                      name + ": the connection was lost during the session; list again");
  }
  connected_ = true;
  return success();
}

Result<> Pop3Link::load_index(bool with_sizes) {
  SQLPOST_TRY(command("/", "UIDL", false, "UIDL"));
  SQLPOST_TRY_ASSIGN(auto uidls, parse_listing(session_->body()));
  std::map<long, std::string> by_number;
  for (const Line& line : uidls) {
    if (!uidl_ok(line.value)) {
      return make_error(Errc::kCorruption, "POP3 server sent a malformed UIDL");
    }
    if (index_.emplace(std::string(line.value), Entry{line.number, 0}).second) {
      order_.emplace_back(line.value);
      by_number.emplace(line.number, line.value);
    }
  }
  if (!with_sizes) {
    return success();
  }
  SQLPOST_TRY(command("/", nullptr, false, "LIST"));
  SQLPOST_TRY_ASSIGN(auto sizes, parse_listing(session_->body()));
  for (const Line& line : sizes) {
    long size = 0;
    const auto it = by_number.find(line.number);
    if (it != by_number.end() && parse_number(line.value, size)) {
      index_[it->second].size = static_cast<std::size_t>(size);
    }
  }
  return success();
}

Result<std::vector<MailRef>> Pop3Link::list() {
  SQLPOST_TRY(begin_session());
  if (auto loaded = load_index(true); !loaded) {
    end_session();
    return loaded.take_error();
  }
  std::vector<MailRef> refs;
  refs.reserve(order_.size());
  for (const std::string& id : order_) {
    refs.push_back(MailRef{id, index_[id].size});
  }
  return refs;
}

Result<Pop3Link::Entry> Pop3Link::find(const std::string& id) {
  if (!uidl_ok(id)) {
    return make_error(Errc::kInvalidArgument, "'" + id.substr(0, 80) + "' is not a POP3 UIDL");
  }
  if (!session_) {
    SQLPOST_TRY(begin_session());
    if (auto loaded = load_index(false); !loaded) {
      end_session();
      return loaded.take_error();
    }
  }
  const auto it = index_.find(id);
  if (it == index_.end()) {
    return make_error(Errc::kNotFound, "mail " + id + " is no longer in the POP3 mailbox");
  }
  return it->second;
}

Result<std::string> Pop3Link::fetch(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const Entry entry, find(ref.id));
  if (entry.size > kMaxMailBytes || ref.size > kMaxMailBytes) {
    return make_error(Errc::kLimitExceeded, "mail " + ref.id + " has " +
                                                std::to_string(std::max(entry.size, ref.size)) +
                                                " bytes, more than kMaxMailBytes");
  }
  SQLPOST_TRY(command("/" + std::to_string(entry.number), nullptr, false, "RETR"));
  return session_->take_body();
}

Result<std::string> Pop3Link::fetch_head(const MailRef& ref, std::size_t max_bytes) {
  SQLPOST_TRY_ASSIGN(const Entry entry, find(ref.id));
  const std::string top = "TOP " + std::to_string(entry.number) + " 0";
  session_->set_body_limit(max_bytes);
  auto fetched = command("/", top.c_str(), false, "TOP");
  if (session_) {
    session_->set_body_limit(kMaxMailBytes);
  }
  SQLPOST_TRY(fetched);
  return session_->take_body();
}

Result<> Pop3Link::remove(const MailRef& ref) {
  SQLPOST_TRY_ASSIGN(const Entry entry, find(ref.id));
  const std::string path = "/" + std::to_string(entry.number);
  SQLPOST_TRY(command(path, "UIDL", true, "UIDL"));
  const std::string reply = session_->last_reply_line();
  const std::string expected = std::to_string(entry.number) + " " + ref.id;
  if (reply.size() < expected.size() ||
      reply.compare(reply.size() - expected.size(), expected.size(), expected) != 0) {
    end_session();
    return make_error(Errc::kTransient, "POP3 message " + std::to_string(entry.number) +
                                            " no longer carries UIDL " + ref.id + "; list again");
  }
  SQLPOST_TRY(command(path, "DELE", true, "DELE"));
  index_.erase(ref.id);
  ++pending_deletions_;
  return success();
}

Result<> Pop3Link::close() {
  if (!session_ || !connected_) {
    end_session();
    return success();
  }
  const std::size_t pending = pending_deletions_;
  session_->set(CURLOPT_FORBID_REUSE, 1L);  // close (QUIT) right after this command
  auto noop = command("/", "NOOP", true, "QUIT");
  end_session();
  if (!noop && pending > 0) {
    return make_error(Errc::kTransient, noop.error().message + "; " + std::to_string(pending) +
                                            " deletion(s) not committed (the mail stays)");
  }
  return noop;
}

}  // namespace sqlpost::transport
