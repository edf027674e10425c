// bench-mails — many mails per pass through real servers: one session against one
// login per mail, both ways.
//
// Sends N sqlpost mails (one part each, a compressed and sealed payload of --bytes)
// through SMTP submission (STARTTLS + AUTH) to one mailbox, then reads them back
// over POP3 (STLS + login), each way twice:
//   session   what the agent does: one SmtpLink for every send of a pass (one
//             connection, TLS handshake and AUTH), one POP3 session that lists,
//             fetches and deletes every mail
//   per mail  the baseline, measured in the same run: a new link — connection,
//             TLS, login — for each mail
// and prints mails/s side by side. Between sending and reading, it waits until the
// server has delivered all 2N mails (it counts them; a poll every 20 ms, 60 s at
// most), so that delivery time is in neither figure.
// Run it through tools/bench-mails.sh, which starts tools/mailstack and passes its
// ports, CA and users. The mailbox should hold no other mail (the bench deletes
// what it reads: the first 2N mails listed).
//
// Usage: bench-mails --smtp-port P --pop3-port P --ca FILE --from-user U
//                    --from-password W --to-user U --to-password W --to ADDRESS
//                    [--mails N] [--bytes B]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench_support.h"
#include "transport/codec.h"
#include "transport/curl_pop3.h"
#include "transport/curl_smtp.h"
#include "transport/key.h"

namespace {

namespace tp = sqlpost::transport;
using sqlpost::bench::die;
using sqlpost::bench::must;
using Clock = std::chrono::steady_clock;

struct Setup {
  std::map<std::string, std::string> flags;
  int mails = 200;
  std::size_t bytes = 2000;

  [[nodiscard]] const std::string& flag(const std::string& name) const {
    const auto it = flags.find(name);
    if (it == flags.end()) {
      die("usage", "--" + name + " is required (run tools/bench-mails.sh)");
    }
    return it->second;
  }
};

tp::MailServer server(const Setup& setup, const std::string& port, const std::string& user,
                      const std::string& password) {
  tp::MailServer s;
  s.host = "127.0.0.1";
  s.port = static_cast<std::uint16_t>(std::strtol(setup.flag(port).c_str(), nullptr, 10));
  s.security = tp::MailSecurity::kStartTls;
  s.user = setup.flag(user);
  s.password = setup.flag(password);
  s.ca_file = setup.flag("ca");
  return s;
}

tp::SmtpConfig smtp_config(const Setup& setup) {
  return {server(setup, "smtp-port", "from-user", "from-password"), "hq@hq.test", "localhost"};
}

// N mails of one part each, as prepare makes them (compressed, sealed, base64).
std::vector<std::string> make_mails(const Setup& setup) {
  tp::Key::Bytes key_bytes{};
  key_bytes.fill(7);
  const tp::Key key(key_bytes);
  std::vector<std::string> mails;
  for (int i = 0; i < setup.mails; ++i) {
    std::vector<std::uint8_t> payload(setup.bytes);
    std::uint32_t state = 2463534242U + static_cast<std::uint32_t>(i);  // xorshift32: zstd
    for (auto& byte : payload) {                                        // cannot shrink it
      state ^= state << 13U;
      state ^= state >> 17U;
      state ^= state << 5U;
      byte = static_cast<std::uint8_t>(state);
    }
    auto parts = must(tp::encode_message({"hq", "site2", static_cast<std::uint64_t>(i + 1)},
                                         "hq@hq.test", setup.flag("to"), payload, key),
                      "encode");
    if (parts.size() != 1) {
      die("encode", "a mail of --bytes " + std::to_string(setup.bytes) + " needs several parts");
    }
    mails.push_back(std::move(parts.front()));
  }
  return mails;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double send_in_one_session(const Setup& setup, const std::vector<std::string>& mails) {
  const auto start = Clock::now();
  auto link = must(tp::SmtpLink::open(smtp_config(setup)), "smtp open");
  for (const auto& mail : mails) {
    must(link->send(setup.flag("to"), mail), "smtp send (one session)");
  }
  link.reset();  // QUIT
  return seconds_since(start);
}

double send_one_login_per_mail(const Setup& setup, const std::vector<std::string>& mails) {
  const auto start = Clock::now();
  for (const auto& mail : mails) {
    auto link = must(tp::SmtpLink::open(smtp_config(setup)), "smtp open");
    must(link->send(setup.flag("to"), mail), "smtp send (one login per mail)");
  }
  return seconds_since(start);
}

std::unique_ptr<tp::Pop3Link> open_mailbox(const Setup& setup) {
  return must(tp::Pop3Link::open(server(setup, "pop3-port", "to-user", "to-password")),
              "pop3 open");
}

// Waits (counting, not timing) until the mailbox lists `count` mails.
void wait_for_delivery(const Setup& setup, std::size_t count) {
  auto box = open_mailbox(setup);
  const auto start = Clock::now();
  for (;;) {
    const auto refs = must(box->list(), "pop3 list");
    if (refs.size() >= count) {
      return;
    }
    if (seconds_since(start) > 60) {
      die("delivery",
          std::to_string(refs.size()) + " of " + std::to_string(count) + " mails arrived in 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

double receive_in_one_session(const Setup& setup, std::size_t count) {
  const auto start = Clock::now();
  auto box = open_mailbox(setup);
  const auto refs = must(box->list(), "pop3 list");
  for (std::size_t i = 0; i < count; ++i) {
    (void)must(box->fetch(refs[i]), "pop3 fetch (one session)");
    must(box->remove(refs[i]), "pop3 remove (one session)");
  }
  must(box->close(), "pop3 close");
  return seconds_since(start);
}

double receive_one_login_per_mail(const Setup& setup, std::size_t count) {
  const auto start = Clock::now();
  for (std::size_t i = 0; i < count; ++i) {
    auto box = open_mailbox(setup);
    const auto refs = must(box->list(), "pop3 list");
    (void)must(box->fetch(refs.front()), "pop3 fetch (one login per mail)");
    must(box->remove(refs.front()), "pop3 remove (one login per mail)");
    must(box->close(), "pop3 close");
  }
  return seconds_since(start);
}

Setup parse(int argc, char** argv) {
  Setup setup;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag.rfind("--", 0) != 0) {
      die("usage", "unexpected argument " + flag);
    }
    setup.flags[flag.substr(2)] = argv[i + 1];
  }
  if (setup.flags.contains("mails")) {
    setup.mails = static_cast<int>(std::strtol(setup.flags["mails"].c_str(), nullptr, 10));
  }
  if (setup.flags.contains("bytes")) {
    setup.bytes = std::strtoul(setup.flags["bytes"].c_str(), nullptr, 10);
  }
  if (setup.mails < 1) {
    die("usage", "--mails must be at least 1");
  }
  return setup;
}

void print_row(const char* way, int mails, double session, double per_mail) {
  std::printf("%-8s %14.1f %14.1f %8.1fx\n", way, mails / session, mails / per_mail,
              per_mail / session);
}

}  // namespace

int bench(int argc, char** argv) {
  sqlpost::bench::program_name() = "bench-mails";
  const Setup setup = parse(argc, argv);
  const auto mails = make_mails(setup);
  const auto count = static_cast<std::size_t>(setup.mails);
  const double sent_session = send_in_one_session(setup, mails);
  const double sent_per_mail = send_one_login_per_mail(setup, mails);
  wait_for_delivery(setup, 2 * count);
  const double read_session = receive_in_one_session(setup, count);
  const double read_per_mail = receive_one_login_per_mail(setup, count);
  std::printf(
      "bench-mails: %d mails of %zu bytes each way (%zu-byte payloads), SMTP submission "
      "STARTTLS+AUTH, POP3 STLS\n",
      setup.mails, mails.front().size(), setup.bytes);
  std::printf("%-8s %14s %14s %9s\n", "way", "session m/s", "per-mail m/s", "speedup");
  print_row("send", setup.mails, sent_session, sent_per_mail);
  print_row("receive", setup.mails, read_session, read_per_mail);
  return 0;
}

int main(int argc, char** argv) { return sqlpost::bench::guarded_main(argc, argv, bench); }
