// Integration tests of the libcurl mail links (SmtpLink, Pop3Link, ImapLink) against
// the real Postfix + Dovecot started by tools/mailstack/start.sh. The servers are
// described by MAILSTACK_* in the environment (. $MAILSTACK_DIR/mailstack.env).
// Without MAILSTACK_SMTP_URL every test fails, unless SQLPOST_SKIP_MAIL=1 (skipped).
// They use only the "probe" mailbox (reserved for these tests) and empty it first.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support.h"
#include "transport/codec.h"
#include "transport/key.h"
#include "transport/mail_links.h"

namespace {

using namespace sqlpost;             // NOLINT(google-build-using-namespace)
using namespace sqlpost::transport;  // NOLINT(google-build-using-namespace)
using std::chrono::milliseconds;

std::string env(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): tests
  return value != nullptr ? value : "";
}

struct Stack {
  std::string dir, host, cacert, user, password, address;
  std::uint16_t smtp = 0, submission = 0, smtps = 0, pop3 = 0, pop3s = 0, imap = 0, imaps = 0;
};

std::uint16_t port_of(const char* name) {
  const std::string text = env(name);
  REQUIRE_MESSAGE(!text.empty(), name << " is not set (is mailstack.env complete?)");
  return static_cast<std::uint16_t>(std::stoi(text));
}

// The "probe" entry of MAILSTACK_USERS ("login:password:address ...").
void find_probe(Stack& s) {
  std::istringstream users(env("MAILSTACK_USERS"));
  std::string entry;
  while (users >> entry) {
    if (entry.rfind("probe:", 0) == 0) {
      const std::size_t second = entry.find(':', 6);
      s.user = "probe";
      s.password = entry.substr(6, second - 6);
      s.address = entry.substr(second + 1);
      s.address = s.address.substr(0, s.address.find(','));
      return;
    }
  }
  FAIL("MAILSTACK_USERS has no 'probe' user (the mailbox reserved for the link tests)");
}

// The running stack, or nullptr when the tests are to be skipped.
const Stack* mailstack() {
  if (env("MAILSTACK_SMTP_URL").empty()) {
    if (env("SQLPOST_SKIP_MAIL") == "1") {
      MESSAGE("SQLPOST_SKIP_MAIL=1: mail server tests skipped");
      return nullptr;
    }
    FAIL(
        "MAILSTACK_SMTP_URL is not set: start the mail servers (bash tools/mailstack/start.sh; "
        "set -a; . /tmp/mailstack/mailstack.env; set +a) or set SQLPOST_SKIP_MAIL=1");
  }
  static const Stack stack = [] {
    Stack s;
    s.dir = env("MAILSTACK_DIR");
    s.host = env("MAILSTACK_HOST").empty() ? "127.0.0.1" : env("MAILSTACK_HOST");
    s.cacert = env("MAILSTACK_CACERT");
    s.smtp = port_of("MAILSTACK_SMTP_PORT");
    s.submission = port_of("MAILSTACK_SUBMISSION_PORT");
    s.smtps = port_of("MAILSTACK_SMTPS_PORT");
    s.pop3 = port_of("MAILSTACK_POP3_PORT");
    s.pop3s = port_of("MAILSTACK_POP3S_PORT");
    s.imap = port_of("MAILSTACK_IMAP_PORT");
    s.imaps = port_of("MAILSTACK_IMAPS_PORT");
    find_probe(s);
    return s;
  }();
  return &stack;
}

MailServer server(const Stack& s, std::uint16_t port, MailSecurity security) {
  MailServer m;
  m.host = s.host;
  m.port = port;
  m.security = security;
  m.user = s.user;
  m.password = s.password;
  m.ca_file = s.cacert;
  m.connect_timeout = milliseconds(5000);
  m.response_timeout = milliseconds(20000);
  m.timeout = milliseconds(60000);
  return m;
}

std::unique_ptr<SmtpLink> smtp(const Stack& s, std::uint16_t port, MailSecurity security) {
  auto link = SmtpLink::open(SmtpConfig{server(s, port, security), s.address, "linktest.test"});
  REQUIRE_MESSAGE(link.ok(), link.error().message);
  return std::move(link).value();
}

std::unique_ptr<Pop3Link> pop3(const Stack& s, std::uint16_t port, MailSecurity security) {
  auto link = Pop3Link::open(server(s, port, security));
  REQUIRE_MESSAGE(link.ok(), link.error().message);
  return std::move(link).value();
}

std::unique_ptr<ImapLink> imap(const Stack& s, std::uint16_t port, MailSecurity security) {
  auto link = ImapLink::open(ImapConfig{server(s, port, security), "INBOX"});
  REQUIRE_MESSAGE(link.ok(), link.error().message);
  return std::move(link).value();
}

std::vector<MailRef> list_all(Link& link) {
  auto refs = link.list();
  REQUIRE_MESSAGE(refs.ok(), refs.error().message);
  return std::move(refs).value();
}

// Empties the probe mailbox (one POP3 session; QUIT commits).
void drain(const Stack& s) {
  auto link = pop3(s, s.pop3, MailSecurity::kStartTls);
  for (const auto& ref : list_all(*link)) {
    auto removed = link->remove(ref);
    REQUIRE_MESSAGE(removed.ok(), removed.error().message);
  }
  auto closed = link->close();
  REQUIRE_MESSAGE(closed.ok(), closed.error().message);
}

// Polls (fresh POP3 session each time) until the mailbox holds `count` mails.
std::vector<MailRef> wait_for(const Stack& s, std::size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::vector<MailRef> refs;
  auto link = pop3(s, s.pop3, MailSecurity::kStartTls);
  while (std::chrono::steady_clock::now() < deadline) {
    refs = list_all(*link);
    if (refs.size() >= count) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  REQUIRE_MESSAGE(refs.size() == count, "mailbox holds " << refs.size() << ", want " << count);
  return refs;
}

std::string unique_tag() {
  std::random_device rd;
  return std::to_string(rd()) + std::to_string(rd());
}

// A mail built by the codec (one part), addressed to the probe mailbox.
std::string codec_mail(const Stack& s) {
  std::vector<std::uint8_t> payload(3000);
  std::mt19937 rng(7);  // NOLINT(cert-msc32-c,cert-msc51-cpp): the same test data every run
  for (auto& b : payload) {
    b = static_cast<std::uint8_t>(rng());
  }
  auto key = generate_key();
  REQUIRE(key.ok());
  auto mails =
      encode_message(MessageHeader{"site-a", "site-b", 1}, s.address, s.address, payload, *key);
  REQUIRE_MESSAGE(mails.ok(), mails.error().message);
  REQUIRE(mails->size() == 1);
  return mails->front();
}

// A hand-made mail whose body has leading dots (SMTP dot-stuffing / POP3 unstuffing).
std::string dotted_mail(const Stack& s, const std::string& tag) {
  return "From: <" + s.address + ">\r\nTo: <" + s.address + ">\r\nSubject: dots " + tag +
         "\r\nDate: Mon, 24 Nov 2025 10:00:00 +0000\r\nMessage-ID: <" + tag +
         "@linktest.test>\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n. space\r\nlast\r\n";
}

// Postfix prepends Return-Path/Delivered-To/Received; the rest must be byte-identical.
bool delivered_intact(const std::string& fetched, const std::string& sent) {
  return fetched.size() > sent.size() && fetched.ends_with(sent);
}

std::string fetch_ok(Link& link, const MailRef& ref) {
  auto mail = link.fetch(ref);
  REQUIRE_MESSAGE(mail.ok(), mail.error().message);
  return std::move(mail).value();
}

void send_ok(Link& link, const std::string& to, const std::string& mail) {
  auto sent = link.send(to, mail);
  REQUIRE_MESSAGE(sent.ok(), sent.error().message);
}

// A listening loopback socket that never accepts (a server that sends no greeting).
class SilentServer {
 public:
  SilentServer() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): POSIX sockets API
    auto* generic = reinterpret_cast<sockaddr*>(&addr);
    REQUIRE(bind(fd_, generic, len) == 0);
    REQUIRE(listen(fd_, 4) == 0);
    REQUIRE(getsockname(fd_, generic, &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  ~SilentServer() { close(fd_); }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

// A loopback TCP port with no listener.
std::uint16_t closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): POSIX sockets API
  auto* generic = reinterpret_cast<sockaddr*>(&addr);
  REQUIRE(bind(fd, generic, len) == 0);
  REQUIRE(getsockname(fd, generic, &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_CASE("submission STARTTLS+AUTH, then POP3 list/fetch/remove: byte-identical") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  drain(*s);
  const std::string codec = codec_mail(*s);
  const std::string dotted = dotted_mail(*s, unique_tag());
  auto out = smtp(*s, s->submission, MailSecurity::kStartTls);
  send_ok(*out, s->address, codec);
  send_ok(*out, s->address, dotted);  // same connection, reused

  auto refs = wait_for(*s, 2);
  auto in = pop3(*s, s->pop3, MailSecurity::kStartTls);
  refs = list_all(*in);
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].id != refs[1].id);
  std::string first = fetch_ok(*in, refs[0]);
  std::string second = fetch_ok(*in, refs[1]);
  // Postfix delivers the two mails of one session in either order (each is its own
  // queue file; CI once listed them swapped): refs[0] is the codec mail from here on.
  if (!looks_like_sqlpost(first)) {
    std::swap(refs[0], refs[1]);
    std::swap(first, second);
  }
  CHECK(first.size() == refs[0].size);
  CHECK(delivered_intact(first, codec));
  CHECK(delivered_intact(second, dotted));
  CHECK(looks_like_sqlpost(first));
  CHECK(peek_part(first).ok());

  SUBCASE("a deletion takes effect when the session ends; other mail remains") {
    REQUIRE(in->remove(refs[0]).ok());
    CHECK(in->pending_deletions() == 1);
    CHECK(in->fetch(refs[0]).error().code == Errc::kNotFound);
    auto other = pop3(*s, s->pop3, MailSecurity::kStartTls);
    CHECK(list_all(*other).size() == 2);  // not yet committed
    REQUIRE(in->close().ok());
    const auto left = list_all(*other);
    REQUIRE(left.size() == 1);
    CHECK(left[0].id == refs[1].id);
    CHECK(delivered_intact(fetch_ok(*other, left[0]), dotted));
  }
  SUBCASE("the destructor commits deletions too") {
    REQUIRE(in->remove(refs[1]).ok());
    in.reset();
    const auto left = list_all(*pop3(*s, s->pop3, MailSecurity::kStartTls));
    REQUIRE(left.size() == 1);
    CHECK(left[0].id == refs[0].id);
  }
  SUBCASE("fetch and remove work without a list() in this session") {
    auto fresh = pop3(*s, s->pop3, MailSecurity::kStartTls);
    CHECK(delivered_intact(fetch_ok(*fresh, MailRef{refs[1].id, 0}), dotted));
    REQUIRE(fresh->remove(MailRef{refs[1].id, 0}).ok());
    REQUIRE(fresh->close().ok());
    CHECK(list_all(*fresh).size() == 1);
    CHECK(fresh->fetch(MailRef{"no-such-uidl", 0}).error().code == Errc::kNotFound);
    CHECK(fresh->fetch(MailRef{"bad uidl", 0}).error().code == Errc::kInvalidArgument);
  }
}

TEST_CASE("implicit TLS: smtps and pop3s") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  drain(*s);
  const std::string dotted = dotted_mail(*s, unique_tag());
  send_ok(*smtp(*s, s->smtps, MailSecurity::kTls), s->address, dotted);
  wait_for(*s, 1);
  auto in = pop3(*s, s->pop3s, MailSecurity::kTls);
  const auto refs = list_all(*in);
  REQUIRE(refs.size() == 1);
  CHECK(delivered_intact(fetch_ok(*in, refs[0]), dotted));
  REQUIRE(in->remove(refs[0]).ok());
  REQUIRE(in->close().ok());
  CHECK(list_all(*in).empty());
}

TEST_CASE("IMAP list/fetch/remove (STARTTLS and implicit TLS)") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  drain(*s);
  const std::string codec = codec_mail(*s);
  const std::string dotted = dotted_mail(*s, unique_tag());
  auto out = smtp(*s, s->submission, MailSecurity::kStartTls);
  send_ok(*out, s->address, codec);
  wait_for(*s, 1);  // Postfix may deliver two mails of one session in either order
  send_ok(*out, s->address, dotted);
  wait_for(*s, 2);

  for (const bool implicit : {false, true}) {
    CAPTURE(implicit);
    if (implicit) {  // the first round removed one; send another
      send_ok(*out, s->address, codec);
      wait_for(*s, 2);
    }
    auto in = implicit ? imap(*s, s->imaps, MailSecurity::kTls)
                       : imap(*s, s->imap, MailSecurity::kStartTls);
    auto refs = list_all(*in);
    REQUIRE(refs.size() == 2);
    CHECK(std::stoul(refs[0].id) < std::stoul(refs[1].id));
    const std::string first = fetch_ok(*in, refs[0]);
    CHECK(first.size() == refs[0].size);
    CHECK(delivered_intact(first, implicit ? dotted : codec));
    CHECK(delivered_intact(fetch_ok(*in, refs[1]), implicit ? codec : dotted));
    REQUIRE(in->remove(refs[0]).ok());  // immediate
    const auto left = list_all(*imap(*s, s->imap, MailSecurity::kStartTls));
    REQUIRE(left.size() == 1);
    CHECK(left[0].id == refs[1].id);
    CHECK(in->remove(refs[0]).ok());  // already gone: still fine
    CHECK(in->fetch(refs[0]).error().code == Errc::kNotFound);
    CHECK(in->fetch(MailRef{"x1", 0}).error().code == Errc::kInvalidArgument);
  }
  drain(*s);
}

TEST_CASE("foreign mail (sent with the curl CLI) is listed and left alone") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  drain(*s);
  const test::TempDir tmp;
  const std::string file = tmp.path("foreign.eml");
  const std::string foreign = "From: <someone@elsewhere.test>\r\nTo: <" + s->address +
                              ">\r\nSubject: hello\r\nDate: Mon, 24 Nov 2025 10:00:00 +0000\r\n"
                              "Message-ID: <" +
                              unique_tag() + "@elsewhere.test>\r\n\r\nnot for sqlpost\r\n";
  std::ofstream(file, std::ios::binary) << foreign;
  const auto sent =
      test::run_command("curl -sS smtp://" + s->host + ":" + std::to_string(s->smtp) +
                        "/elsewhere.test --mail-from someone@elsewhere.test --mail-rcpt " +
                        s->address + " -T " + test::shell_quote(file));
  REQUIRE_MESSAGE(sent.exit_code == 0, sent.output);
  send_ok(*smtp(*s, s->submission, MailSecurity::kStartTls), s->address, codec_mail(*s));
  wait_for(*s, 2);

  for (int round = 0; round < 2; ++round) {
    auto in = pop3(*s, s->pop3, MailSecurity::kStartTls);
    for (const auto& ref : list_all(*in)) {
      const std::string mail = fetch_ok(*in, ref);
      if (looks_like_sqlpost(mail)) {
        REQUIRE(in->remove(ref).ok());
      } else {
        CHECK(delivered_intact(mail, foreign));
      }
    }
    REQUIRE(in->close().ok());
  }
  auto imap_in = imap(*s, s->imap, MailSecurity::kStartTls);
  const auto left = list_all(*imap_in);
  REQUIRE(left.size() == 1);
  CHECK(delivered_intact(fetch_ok(*imap_in, left[0]), foreign));
  drain(*s);
}

TEST_CASE("wrong password: kConfig, without the password in the message") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  MailServer bad = server(*s, s->submission, MailSecurity::kStartTls);
  bad.password = "Wr0ng-Passw0rd";
  auto out = SmtpLink::open(SmtpConfig{bad, s->address, "linktest.test"});
  REQUIRE(out.ok());
  const auto sent = (*out)->send(s->address, dotted_mail(*s, "x"));
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.error().code == Errc::kConfig);
  CHECK(sent.error().message.find("wrong user name or password") != std::string::npos);
  CHECK(sent.error().message.find(bad.password) == std::string::npos);

  bad.port = s->pop3;
  auto in = Pop3Link::open(bad);
  REQUIRE(in.ok());
  const auto listed = (*in)->list();
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().code == Errc::kConfig);
  CHECK(listed.error().message.find(bad.password) == std::string::npos);

  bad.port = s->imap;
  auto imap_in = ImapLink::open(ImapConfig{bad, "INBOX"});
  REQUIRE(imap_in.ok());
  CHECK((*imap_in)->list().error().code == Errc::kConfig);
}

TEST_CASE("untrusted certificate (no CA file): kConfig naming the certificate") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  MailServer no_ca = server(*s, s->submission, MailSecurity::kStartTls);
  no_ca.ca_file.clear();
  auto out = SmtpLink::open(SmtpConfig{no_ca, s->address, "linktest.test"});
  REQUIRE(out.ok());
  const auto sent = (*out)->send(s->address, dotted_mail(*s, "x"));
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.error().code == Errc::kConfig);
  CHECK(sent.error().message.find("certificate") != std::string::npos);

  no_ca.port = s->pop3s;
  no_ca.security = MailSecurity::kTls;
  auto in = Pop3Link::open(no_ca);
  REQUIRE(in.ok());
  const auto listed = (*in)->list();
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().code == Errc::kConfig);
  CHECK(listed.error().message.find("certificate") != std::string::npos);

  no_ca.verify = false;  // explicitly switched off: accepted
  auto unverified = Pop3Link::open(no_ca);
  REQUIRE(unverified.ok());
  CHECK((*unverified)->list().ok());
}

TEST_CASE("closed port and silent server: kTransient") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  MailServer closed = server(*s, closed_port(), MailSecurity::kStartTls);
  auto out = SmtpLink::open(SmtpConfig{closed, s->address, "linktest.test"});
  REQUIRE(out.ok());
  const auto sent = (*out)->send(s->address, dotted_mail(*s, "x"));
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.error().code == Errc::kTransient);
  CHECK(sent.error().message.find("cannot connect") != std::string::npos);
  auto in = Pop3Link::open(closed);
  REQUIRE(in.ok());
  CHECK((*in)->list().error().code == Errc::kTransient);

  // A listener that never sends a greeting: the connect timeout fires.
  const SilentServer quiet;
  MailServer silent = server(*s, quiet.port(), MailSecurity::kStartTls);
  silent.connect_timeout = milliseconds(500);
  auto mute = Pop3Link::open(silent);
  REQUIRE(mute.ok());
  const auto start = std::chrono::steady_clock::now();
  const auto listed = (*mute)->list();
  REQUIRE_FALSE(listed.ok());
  CHECK(listed.error().code == Errc::kTransient);
  CHECK(listed.error().message.find("timed out") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));  // it does not hang
}

TEST_CASE("SMTP refusals: 552 too big and 550 unknown user are kPermanent") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  const std::size_t limit = std::stoul(
      env("MAILSTACK_MSG_LIMIT").empty() ? std::string("10240000") : env("MAILSTACK_MSG_LIMIT"));
  std::string big = dotted_mail(*s, unique_tag());
  const std::string line(76, 'A');
  while (big.size() <= limit + 1024) {
    big += line + "\r\n";
  }
  REQUIRE(big.size() <= kMaxMailBytes);
  auto out = smtp(*s, s->submission, MailSecurity::kStartTls);
  const auto too_big = out->send(s->address, big);
  REQUIRE_FALSE(too_big.ok());
  CHECK(too_big.error().code == Errc::kPermanent);
  CHECK(too_big.error().message.find("552") != std::string::npos);

  const std::string domain = s->address.substr(s->address.find('@'));
  const auto unknown = out->send("nobody-" + unique_tag() + domain, dotted_mail(*s, "x"));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == Errc::kPermanent);
  CHECK(unknown.error().message.find("550") != std::string::npos);
  send_ok(*out, s->address, dotted_mail(*s, unique_tag()));  // the link still works
  CHECK(out->send("not an address", "x").error().code == Errc::kInvalidArgument);
  drain(*s);
}

TEST_CASE("a mailbox mail over kMaxMailBytes is refused, never read whole") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  REQUIRE_FALSE(s->dir.empty());
  drain(*s);
  // Too big for Postfix: put it straight into the Maildir (as root, readable by all).
  const std::filesystem::path maildir = std::filesystem::path(s->dir) / "mail" / s->user / "new";
  const std::string name = "1700000000." + unique_tag() + ".linktest";
  {
    std::ofstream file(maildir / name, std::ios::binary);
    file << "From: <x@y.test>\r\nSubject: huge\r\n\r\n";
    const std::string line(998, 'B');
    for (std::size_t n = 0; n < kMaxMailBytes / 1000 + 100; ++n) {
      file << line << "\r\n";
    }
  }
  auto in = pop3(*s, s->pop3, MailSecurity::kStartTls);
  const auto refs = list_all(*in);
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].size > kMaxMailBytes);
  CHECK(in->fetch(refs[0]).error().code == Errc::kLimitExceeded);  // from LIST's size
  auto fresh = pop3(*s, s->pop3, MailSecurity::kStartTls);         // size unknown: RETR aborted
  const auto aborted = fresh->fetch(MailRef{refs[0].id, 0});
  REQUIRE_FALSE(aborted.ok());
  CHECK(aborted.error().code == Errc::kLimitExceeded);
  // Its head can still be read (to tell sqlpost's from foreign mail): TOP n 0.
  auto head_in = pop3(*s, s->pop3, MailSecurity::kStartTls);
  REQUIRE(list_all(*head_in).size() == 1);
  const auto head = head_in->fetch_head(refs[0], kMaxHeaderBlockBytes);
  REQUIRE_MESSAGE(head.ok(), head.error().message);
  CHECK(head->starts_with("From: <x@y.test>\r\nSubject: huge\r\n"));
  CHECK(head->size() < 200);
  auto imap_in = imap(*s, s->imap, MailSecurity::kStartTls);
  const auto imap_refs = list_all(*imap_in);
  REQUIRE(imap_refs.size() == 1);
  CHECK(imap_in->fetch(imap_refs[0]).error().code == Errc::kLimitExceeded);
  CHECK(imap_in->fetch(MailRef{imap_refs[0].id, 0}).error().code == Errc::kLimitExceeded);
  const auto imap_head = imap_in->fetch_head(imap_refs[0], kMaxHeaderBlockBytes);  // BODY[HEADER]
  REQUIRE_MESSAGE(imap_head.ok(), imap_head.error().message);
  CHECK(imap_head->starts_with("From: <x@y.test>\r\nSubject: huge\r\n"));
  CHECK(imap_head->size() < 200);
  CHECK_FALSE(imap_in->fetch_head(imap_refs[0], 10).ok());  // over max_bytes
  drain(*s);
}

TEST_CASE("settings are checked before anything is contacted") {
  MailServer bad;
  bad.host = "exa mple";
  CHECK(Pop3Link::open(bad).error().code == Errc::kConfig);
  bad.host = "127.0.0.1";
  bad.password = "a\r\nQUIT";
  CHECK(Pop3Link::open(bad).error().code == Errc::kConfig);
  bad.password.clear();
  CHECK(SmtpLink::open(SmtpConfig{bad, "not-an-address", "x"}).error().code == Errc::kConfig);
  CHECK(SmtpLink::open(SmtpConfig{bad, "a@b.test", "bad/helo"}).error().code == Errc::kConfig);
  CHECK(ImapLink::open(ImapConfig{bad, "IN\x01BOX"}).error().code == Errc::kConfig);
  CHECK(ImapLink::open(ImapConfig{bad, "Caf\xc3\xa9"}).error().code == Errc::kConfig);
  CHECK(imap_mailbox_url(bad, "Shop Mail/2026; 100%").value() ==
        "imap://127.0.0.1:143/Shop%20Mail/2026%3b%20100%25");
  bad.host = "::1";
  CHECK(imap_mailbox_url(bad, "INBOX").value() == "imap://[::1]:143/INBOX");
  bad.host = "127.0.0.1";
  CHECK(server_url(MailProtocol::kSmtp, bad) == "smtp://127.0.0.1:587");
  bad.security = MailSecurity::kTls;
  CHECK(server_url(MailProtocol::kPop3, bad) == "pop3s://127.0.0.1:995");
}

std::string describe(const std::vector<CheckStep>& steps) {
  std::string text;
  for (const auto& step : steps) {
    text += (step.ok ? "  ok   " : "  FAIL ") + step.name + ": " + step.detail + "\n";
  }
  return text;
}

// Checks that exactly the step `expected` failed ("" = every step passed).
void expect_step(const Result<std::vector<CheckStep>>& steps, const std::string& expected) {
  REQUIRE_MESSAGE(steps.ok(), steps.error().message);
  REQUIRE_FALSE(steps->empty());
  const std::string failed = steps->back().ok ? "" : steps->back().name;
  CHECK_MESSAGE(failed == expected, describe(*steps));
  for (std::size_t i = 0; i + 1 < steps->size(); ++i) {
    CHECK_MESSAGE((*steps)[i].ok, describe(*steps));
  }
}

TEST_CASE("connection checks name the step that failed") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  const SmtpConfig submission{server(*s, s->submission, MailSecurity::kStartTls), s->address,
                              "linktest.test"};
  const auto smtp_steps = check_smtp(submission);
  expect_step(smtp_steps, "");
  CHECK(smtp_steps->size() == 6);  // connect greeting STARTTLS TLS login ready
  expect_step(check_pop3(server(*s, s->pop3, MailSecurity::kStartTls)), "");
  expect_step(check_pop3(server(*s, s->pop3s, MailSecurity::kTls)), "");
  expect_step(check_imap(ImapConfig{server(*s, s->imaps, MailSecurity::kTls), "INBOX"}), "");
  expect_step(
      check_smtp(SmtpConfig{server(*s, s->smtps, MailSecurity::kTls), s->address, "linktest.test"}),
      "");

  MailServer bad = server(*s, s->pop3, MailSecurity::kStartTls);
  bad.password = "Wr0ng-Passw0rd";
  const auto denied = check_pop3(bad);
  expect_step(denied, "login");
  CHECK(describe(*denied).find(bad.password) == std::string::npos);
  bad = submission.server;
  bad.password = "Wr0ng-Passw0rd";
  expect_step(check_smtp(SmtpConfig{bad, s->address, "x.test"}), "login");
  bad = submission.server;
  bad.ca_file.clear();
  expect_step(check_smtp(SmtpConfig{bad, s->address, "x.test"}), "TLS");
  bad = server(*s, s->imaps, MailSecurity::kTls);
  bad.ca_file.clear();
  expect_step(check_imap(ImapConfig{bad, "INBOX"}), "TLS");
  bad = server(*s, s->pop3, MailSecurity::kTls);  // implicit TLS on a plain port
  expect_step(check_pop3(bad), "TLS");
  bad = server(*s, closed_port(), MailSecurity::kStartTls);
  expect_step(check_pop3(bad), "connect");
  const SilentServer quiet;
  bad = server(*s, quiet.port(), MailSecurity::kStartTls);
  bad.connect_timeout = milliseconds(500);
  expect_step(check_smtp(SmtpConfig{bad, s->address, "x.test"}), "greeting");
  const auto no_box = check_imap(ImapConfig{server(*s, s->imap, MailSecurity::kStartTls), "Nope"});
  expect_step(no_box, "mailbox");
  // Credentials set, but the server offers no AUTH there (port 25 without TLS): the
  // login step fails instead of "logged in" (the next run would get 530).
  const auto no_auth =
      check_smtp(SmtpConfig{server(*s, s->smtp, MailSecurity::kNone), s->address, "x.test"});
  expect_step(no_auth, "login");
  CHECK(describe(*no_auth).find("did not offer a login") != std::string::npos);
}

TEST_CASE("MailLink: SMTP out, POP3 or IMAP in") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  drain(*s);
  for (const InboxProtocol inbox : {InboxProtocol::kPop3, InboxProtocol::kImap}) {
    CAPTURE(static_cast<int>(inbox));
    MailLinkConfig config;
    config.smtp =
        SmtpConfig{server(*s, s->submission, MailSecurity::kStartTls), s->address, "linktest.test"};
    config.inbox = inbox;
    config.inbox_server = inbox == InboxProtocol::kPop3
                              ? server(*s, s->pop3, MailSecurity::kStartTls)
                              : server(*s, s->imap, MailSecurity::kStartTls);
    auto opened = MailLink::open(config);
    REQUIRE_MESSAGE(opened.ok(), opened.error().message);
    MailLink& link = **opened;
    const std::string mail = codec_mail(*s);
    send_ok(link, s->address, mail);
    wait_for(*s, 1);
    const auto refs = list_all(link);
    REQUIRE(refs.size() == 1);
    CHECK(delivered_intact(fetch_ok(link, refs[0]), mail));
    REQUIRE(link.remove(refs[0]).ok());
    REQUIRE(link.close().ok());
    CHECK(list_all(link).empty());
  }
}

}  // namespace

TEST_CASE("EHLO name and a chosen SASL mechanism (LOGIN, CRAM-MD5) for SMTP, POP3 and IMAP") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  drain(*s);
  const std::string mail = dotted_mail(*s, unique_tag());
  for (const char* mechanism : {"LOGIN", "CRAM-MD5"}) {
    MailServer chosen = server(*s, s->submission, MailSecurity::kStartTls);
    chosen.auth = mechanism;
    auto out = SmtpLink::open(SmtpConfig{chosen, s->address, "relay.ehlo-check.test"});
    REQUIRE(out.ok());
    send_ok(**out, s->address, mail);
  }
  wait_for(*s, 2);  // delivered in either order, but both before the unnamed one
  auto unnamed = SmtpLink::open(
      SmtpConfig{server(*s, s->submission, MailSecurity::kStartTls), s->address, ""});
  REQUIRE(unnamed.ok());
  send_ok(**unnamed, s->address, mail);
  wait_for(*s, 3);

  MailServer pop = server(*s, s->pop3, MailSecurity::kStartTls);
  pop.auth = "CRAM-MD5";
  auto in = Pop3Link::open(pop);
  REQUIRE(in.ok());
  const auto refs = list_all(**in);
  REQUIRE(refs.size() == 3);
  // Postfix records the EHLO name in its Received: header.
  CHECK(fetch_ok(**in, refs[0]).find("from relay.ehlo-check.test (") != std::string::npos);
  std::array<char, 256> host{};
  REQUIRE(gethostname(host.data(), host.size() - 1) == 0);
  const std::string own = "from " + std::string(host.data()) + " (";
  CHECK_MESSAGE(fetch_ok(**in, refs[2]).find(own) != std::string::npos, own);

  MailServer imap_login = server(*s, s->imap, MailSecurity::kStartTls);
  imap_login.auth = "LOGIN";
  auto box = ImapLink::open(ImapConfig{imap_login, "INBOX"});
  REQUIRE(box.ok());
  CHECK(list_all(**box).size() == 3);
  drain(*s);
}

TEST_CASE("a chosen mechanism Postfix and Dovecot do not offer is named, not the password") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  const std::string offered = "the server offers AUTH PLAIN LOGIN CRAM-MD5";
  MailServer submission = server(*s, s->submission, MailSecurity::kStartTls);
  submission.auth = "DIGEST-MD5";
  auto out = SmtpLink::open(SmtpConfig{submission, s->address, "relay.ehlo-check.test"});
  REQUIRE(out.ok());
  auto sent = (*out)->send(s->address, dotted_mail(*s, unique_tag()));
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.error().code == Errc::kConfig);
  CHECK_MESSAGE(sent.error().message.find(offered) != std::string::npos, sent.error().message);
  CHECK_MESSAGE(sent.error().message.find("not DIGEST-MD5") != std::string::npos,
                sent.error().message);

  MailServer pop = server(*s, s->pop3, MailSecurity::kStartTls);
  pop.auth = "DIGEST-MD5";
  auto in = Pop3Link::open(pop);
  REQUIRE(in.ok());
  auto listed = (*in)->list();
  REQUIRE_FALSE(listed.ok());
  CHECK_MESSAGE(listed.error().message.find(offered) != std::string::npos, listed.error().message);

  MailServer imap = server(*s, s->imap, MailSecurity::kStartTls);
  imap.auth = "NTLM";
  auto box = ImapLink::open(ImapConfig{imap, "INBOX"});
  REQUIRE(box.ok());
  auto boxed = (*box)->list();
  REQUIRE_FALSE(boxed.ok());
  CHECK_MESSAGE(boxed.error().message.find(offered) != std::string::npos, boxed.error().message);
  CHECK(boxed.error().message.find("not NTLM") != std::string::npos);

  MailServer wrong = server(*s, s->pop3, MailSecurity::kStartTls);
  wrong.auth = "PLAIN";
  wrong.password = "not-the-password";
  auto refused = Pop3Link::open(wrong);
  REQUIRE(refused.ok());
  auto denied = (*refused)->list();
  REQUIRE_FALSE(denied.ok());
  CHECK_MESSAGE(denied.error().message.find("wrong user name or password") != std::string::npos,
                denied.error().message);
}

TEST_CASE("an IMAP folder whose name has a space and a ';' is read like INBOX") {
  const Stack* s = mailstack();
  if (s == nullptr) return;
  const std::string folder = "Shop Mail; " + unique_tag();
  const std::string base = "imap://" + s->host + ":" + std::to_string(s->imap);
  const std::string login = " --ssl-reqd --cacert " + test::shell_quote(s->cacert) + " -u " +
                            test::shell_quote(s->user + ":" + s->password);
  const auto created = test::run_command("curl -sS " + login + " " + test::shell_quote(base) +
                                         " -X " + test::shell_quote("CREATE \"" + folder + "\""));
  REQUIRE_MESSAGE(created.exit_code == 0, created.output);
  const test::TempDir tmp;
  const std::string file = tmp.path("append.eml");
  const std::string mail = codec_mail(*s);
  std::ofstream(file, std::ios::binary) << mail;
  auto url = imap_mailbox_url(server(*s, s->imap, MailSecurity::kStartTls), folder);
  REQUIRE(url.ok());
  const auto appended =
      test::run_command("curl -sS " + login + " " + test::shell_quote(url.value()) + " -T " +
                        test::shell_quote(file));
  REQUIRE_MESSAGE(appended.exit_code == 0, appended.output);

  const ImapConfig config{server(*s, s->imap, MailSecurity::kStartTls), folder};
  expect_step(check_imap(config), "");
  auto in = ImapLink::open(config);
  REQUIRE_MESSAGE(in.ok(), in.error().message);
  const auto refs = list_all(**in);
  REQUIRE(refs.size() == 1);
  CHECK(fetch_ok(**in, refs[0]) == mail);  // APPENDed as is: no delivery headers
  REQUIRE((*in)->remove(refs[0]).ok());
  CHECK(list_all(**in).empty());
  const auto deleted = test::run_command("curl -sS " + login + " " + test::shell_quote(base) +
                                         " -X " + test::shell_quote("DELETE \"" + folder + "\""));
  CHECK_MESSAGE(deleted.exit_code == 0, deleted.output);
}
