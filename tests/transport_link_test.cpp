// Tests of the links: FileLink (Maildir folders) and the fault-injecting FakeNetwork.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "transport/codec.h"
#include "transport/fake_link.h"
#include "transport/file_link.h"

namespace {

using namespace sqlpost;             // NOLINT(google-build-using-namespace)
using namespace sqlpost::transport;  // NOLINT(google-build-using-namespace)
namespace fs = std::filesystem;

// A fresh, empty folder for one test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("SQLPOST_TEST_TMP");
    std::random_device rd;
    path_ = fs::path(base != nullptr ? base : fs::temp_directory_path().string()) /
            ("transport-link-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::unique_ptr<FileLink> file_link(const fs::path& root, const std::string& address) {
  auto link = FileLink::open(root, address);
  REQUIRE_MESSAGE(link.ok(), link.error().message);
  return std::move(link).value();
}

std::vector<std::string> fetch_all(Link& link) {
  auto refs = link.list();
  REQUIRE(refs.ok());
  std::vector<std::string> out;
  for (const auto& ref : *refs) {
    auto mail = link.fetch(ref);
    REQUIRE(mail.ok());
    out.push_back(*mail);
  }
  return out;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Tests are deterministic on purpose: every random choice comes from a fixed seed.
std::mt19937_64 seeded_rng(std::uint64_t seed) { return std::mt19937_64(seed); }

Key test_key() {
  Key::Bytes b{};
  b.fill(0x5A);
  return Key(b);
}

std::vector<std::string> numbered(int n) {
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back("mail " + std::to_string(i));
  return out;
}

}  // namespace

TEST_CASE("FileLink: send, list in delivery order, fetch, remove") {
  TempDir tmp;
  auto a = file_link(tmp.path(), "siteA");
  auto b = file_link(tmp.path(), "b@example.com");
  CHECK(b->list()->empty());
  for (const auto& m : numbered(5)) REQUIRE(a->send("b@example.com", m).ok());
  REQUIRE(a->flush().ok());
  CHECK(fetch_all(*b) == numbered(5));
  CHECK(fs::is_empty(tmp.path() / "b@example.com" / "tmp"));
  CHECK(a->list()->empty());

  auto refs = b->list();
  REQUIRE(refs->size() == 5);
  CHECK(refs->front().size == std::string("mail 0").size());
  REQUIRE(b->remove(refs->front()).ok());
  CHECK(b->list()->size() == 4);
  CHECK(b->fetch(refs->front()).error().code == Errc::kNotFound);
  CHECK(b->remove(refs->front()).error().code == Errc::kNotFound);
}

TEST_CASE("FileLink: a mail arrives at flush(), whole; one not flushed never arrives") {
  TempDir tmp;
  auto b = file_link(tmp.path(), "b");
  auto c = file_link(tmp.path(), "c");
  {
    auto a = file_link(tmp.path(), "a");
    CHECK(a->flush().ok());  // nothing to flush
    REQUIRE(a->send("b", "one").ok());
    REQUIRE(a->send("c", "two").ok());
    REQUIRE(a->send("b", "three").ok());
    // Written to tmp/, not yet in new/: a receiver sees nothing.
    CHECK(b->list()->empty());
    CHECK(c->list()->empty());
    CHECK(!fs::is_empty(tmp.path() / "b" / "tmp"));
    REQUIRE(a->flush().ok());
    CHECK(fetch_all(*b) == std::vector<std::string>{"one", "three"});
    CHECK(fetch_all(*c) == std::vector<std::string>{"two"});
    CHECK(fs::is_empty(tmp.path() / "b" / "tmp"));
    CHECK(a->flush().ok());  // a second flush has nothing to do
    CHECK(fetch_all(*b).size() == 2);

    REQUIRE(a->send("c", "never flushed").ok());
    CHECK(!fs::is_empty(tmp.path() / "c" / "tmp"));
  }  // the link ends with a mail not flushed: it is removed, never delivered
  CHECK(fs::is_empty(tmp.path() / "c" / "tmp"));
  CHECK(fetch_all(*c) == std::vector<std::string>{"two"});
}

TEST_CASE("FileLink: a flush that cannot deliver fails and leaves nothing behind") {
  TempDir tmp;
  auto a = file_link(tmp.path(), "a");
  auto b = file_link(tmp.path(), "b");
  REQUIRE(a->send("b", "lost").ok());
  // new/ replaced by a file: the rename into it fails.
  fs::remove_all(tmp.path() / "b" / "new");
  write_file(tmp.path() / "b" / "new", "not a folder");
  CHECK(!a->flush().ok());
  CHECK(fs::is_empty(tmp.path() / "b" / "tmp"));
  fs::remove(tmp.path() / "b" / "new");
  CHECK(a->flush().ok());  // the failed mail is gone, not retried by the link
  CHECK(b->list()->empty());
  REQUIRE(a->send("b", "again").ok());  // the sender sends it again
  REQUIRE(a->flush().ok());
  CHECK(fetch_all(*b) == std::vector<std::string>{"again"});
}

TEST_CASE("FileLink: address validation") {
  TempDir tmp;
  const std::vector<std::string> bad_addresses = {"",
                                                  ".hidden",
                                                  "a/b",
                                                  "..",
                                                  "a..b",
                                                  "a b",
                                                  "a\\b",
                                                  "../x",
                                                  std::string(kMaxAddressBytes + 1, 'a'),
                                                  std::string("a\0b", 3)};
  for (const auto& bad : bad_addresses) {
    CHECK(FileLink::open(tmp.path(), bad).error().code == Errc::kInvalidArgument);
  }
  auto a = file_link(tmp.path(), "siteA");
  CHECK(a->send("../escape", "x").error().code == Errc::kInvalidArgument);
  CHECK(a->send("x/y", "x").error().code == Errc::kInvalidArgument);
  CHECK(file_link(tmp.path(), "shop.1_a+b-c@example.com")->address() == "shop.1_a+b-c@example.com");
}

TEST_CASE("FileLink: foreign files, cur/, bad refs and size limit") {
  TempDir tmp;
  auto b = file_link(tmp.path(), "siteB");
  REQUIRE(b->list().ok());  // creates the Maildir
  const fs::path box = tmp.path() / "siteB";
  write_file(box / "new" / "0000-foreign", "From: someone\r\n\r\nhello\r\n");
  write_file(box / "cur" / "0001-seen:2,S", "seen");
  write_file(box / "new" / ".dotfile", "skip me");
  fs::create_directory(box / "new" / "subdir");
  auto refs = b->list();
  REQUIRE(refs.ok());
  REQUIRE(refs->size() == 2);
  CHECK(refs->at(0).id == "new/0000-foreign");
  CHECK(refs->at(1).id == "cur/0001-seen:2,S");
  CHECK(*b->fetch(refs->at(1)) == "seen");

  const std::vector<std::string> bad_ids = {"new/../../escape", "tmp/x",       "new/",
                                            "new/.x",           "/etc/passwd", "cur/a/b"};
  for (const auto& id : bad_ids) {
    CHECK(b->fetch(MailRef{id, 0}).error().code == Errc::kInvalidArgument);
    CHECK(b->remove(MailRef{id, 0}).error().code == Errc::kInvalidArgument);
  }
  fs::resize_file(box / "new" / "0000-foreign", kMaxMailBytes + 1);
  CHECK(b->fetch(refs->at(0)).error().code == Errc::kLimitExceeded);
}

TEST_CASE("FileLink: a multi-part message end to end") {
  TempDir tmp;
  auto a = file_link(tmp.path(), "a");
  auto b = file_link(tmp.path(), "b");
  std::vector<std::uint8_t> payload(300000);
  auto rng = seeded_rng(5);
  for (auto& x : payload) x = static_cast<std::uint8_t>(rng());
  auto mails = encode_message({"A", "B", 1}, "a", "b", payload, test_key(), 50000);
  REQUIRE(mails.ok());
  for (const auto& m : *mails) REQUIRE(a->send("b", m).ok());
  REQUIRE(a->flush().ok());
  std::vector<OpenedPart> parts;
  const auto refs = b->list();
  REQUIRE(refs.ok());
  for (const auto& ref : *refs) {
    auto part = open_part(*b->fetch(ref), test_key(), "B");
    REQUIRE(part.ok());
    parts.push_back(std::move(part).value());
    REQUIRE(b->remove(ref).ok());
  }
  auto back = reassemble(std::move(parts));
  REQUIRE(back.ok());
  CHECK(*back == payload);
}

TEST_CASE("FakeNetwork: a faultless network delivers in order") {
  FakeNetwork net(1);
  auto a = net.link_for("a");
  auto b = net.link_for("b");
  for (const auto& m : numbered(10)) REQUIRE(a->send("b", m).ok());
  CHECK(net.mailbox("b") == numbered(10));
  CHECK(fetch_all(*b) == numbered(10));
  auto refs = b->list();
  REQUIRE(b->remove(refs->at(3)).ok());
  CHECK(b->remove(refs->at(3)).error().code == Errc::kNotFound);
  CHECK(b->fetch(refs->at(3)).error().code == Errc::kNotFound);
  CHECK(b->list()->size() == 9);
  CHECK(net.stats().sends == 10);
  CHECK(net.stats().delivered == 10);
}

TEST_CASE("FakeNetwork: each fault on its own") {
  const auto mails = numbered(20);
  auto run = [&](FaultConfig faults) {
    FakeNetwork net(99, faults);
    auto a = net.link_for("a");
    for (const auto& m : mails) REQUIRE(a->send("b", m).ok());
    return std::make_pair(net.mailbox("b"), net.stats());
  };
  SUBCASE("drop") {
    auto [box, stats] = run({.drop = 1.0});
    CHECK(box.empty());
    CHECK(stats.dropped == 20);
  }
  SUBCASE("duplicate") {
    auto [box, stats] = run({.duplicate = 1.0});
    CHECK(box.size() == 40);
    CHECK(stats.duplicated == 20);
  }
  SUBCASE("corrupt") {
    auto [box, stats] = run({.corrupt = 1.0});
    REQUIRE(box.size() == 20);
    for (std::size_t i = 0; i < box.size(); ++i) {
      REQUIRE(box[i].size() == mails[i].size());
      std::size_t diff = 0;
      for (std::size_t j = 0; j < box[i].size(); ++j) diff += box[i][j] != mails[i][j] ? 1 : 0;
      CHECK(diff == 1);
    }
  }
  SUBCASE("reorder") {
    auto [box, stats] = run({.reorder = 1.0});
    CHECK(box != mails);
    std::sort(box.begin(), box.end());
    auto sorted = mails;
    std::sort(sorted.begin(), sorted.end());
    CHECK(box == sorted);
  }
}

TEST_CASE("FakeNetwork: delayed mail arrives after ticks") {
  FakeNetwork net(3, {.delay = 1.0, .max_delay_ticks = 4});
  auto a = net.link_for("a");
  for (const auto& m : numbered(10)) REQUIRE(a->send("b", m).ok());
  CHECK(net.mailbox("b").empty());
  CHECK(net.in_flight() == 10);
  std::size_t seen = 0;
  for (int t = 0; t < 4; ++t) {
    net.tick();
    CHECK(net.mailbox("b").size() >= seen);
    seen = net.mailbox("b").size();
  }
  CHECK(net.in_flight() == 0);
  CHECK(seen == 10);

  REQUIRE(a->send("b", "late").ok());
  net.deliver_delayed();
  CHECK(net.mailbox("b").size() == 11);
}

TEST_CASE("FakeNetwork: injected send failures, foreign mail, links outliving the network") {
  std::unique_ptr<Link> b;
  {
    FakeNetwork net(4);
    auto a = net.link_for("a");
    b = net.link_for("b");
    net.fail_send(2);
    net.fail_send(3, Errc::kPermanent);
    CHECK(a->send("b", "one").ok());
    CHECK(a->send("b", "two").error().code == Errc::kTransient);
    CHECK(a->send("b", "three").error().code == Errc::kPermanent);
    CHECK(a->send("b", "four").ok());
    net.put("b", "From: spam@example.com\r\n\r\nbuy now\r\n");
    CHECK(net.mailbox("b").size() == 3);
    CHECK(net.stats().failed == 2);
    CHECK(net.mailbox("nobody").empty());
  }
  const auto all = fetch_all(*b);
  REQUIRE(all.size() == 3);
  CHECK(all[0] == "one");
  CHECK(all[1] == "four");
  CHECK_FALSE(looks_like_sqlpost(all[2]));
}

TEST_CASE("FakeNetwork: held until flush(), a failed flush and a dropped link lose the mail") {
  FakeNetwork net(4);
  net.hold_until_flush();
  auto a = net.link_for("a");
  auto b = net.link_for("b");
  net.fail_send(2);
  net.fail_flush(2);
  CHECK(a->flush().ok());  // nothing queued: not counted
  CHECK(a->send("b", "one").ok());
  CHECK(a->send("b", "two").error().code == Errc::kTransient);
  CHECK(net.mailbox("b").empty());
  CHECK(a->flush().ok());
  CHECK(net.mailbox("b") == std::vector<std::string>{"one"});
  CHECK(a->send("b", "three").ok());
  CHECK(a->flush().error().code == Errc::kIOError);
  CHECK(a->flush().ok());
  CHECK(a->send("b", "four").ok());
  a.reset();  // the process died before its flush
  CHECK(net.mailbox("b") == std::vector<std::string>{"one"});
  CHECK(net.stats().flushes == 2);
  CHECK(net.stats().lost_in_flush == 1);
  CHECK(b->list()->size() == 1);
}

TEST_CASE("FakeNetwork: the same seed gives the same faults") {
  const FaultConfig faults{.drop = 0.2,
                           .duplicate = 0.2,
                           .reorder = 0.3,
                           .delay = 0.3,
                           .corrupt = 0.2,
                           .max_delay_ticks = 3};
  auto run = [&](std::uint64_t seed) {
    FakeNetwork net(seed, faults);
    auto a = net.link_for("a");
    auto b = net.link_for("b");
    std::vector<std::string> seen;
    for (int round = 0; round < 10; ++round) {
      for (int i = 0; i < 10; ++i) {
        REQUIRE(a->send("b", "r" + std::to_string(round) + "m" + std::to_string(i)).ok());
        REQUIRE(b->send("a", "back " + std::to_string(i)).ok());
      }
      net.tick();
      for (const auto& m : fetch_all(*b)) seen.push_back(m);
      const auto refs = b->list();
      for (const auto& ref : *refs) REQUIRE(b->remove(ref).ok());
    }
    net.deliver_delayed();
    for (const auto& m : fetch_all(*b)) seen.push_back(m);
    return std::make_pair(seen, net.mailbox("a"));
  };
  CHECK(run(12345) == run(12345));
  CHECK(run(12345) != run(54321));
}

TEST_CASE("FakeNetwork: a multi-part message survives duplicates, reordering and delays") {
  FakeNetwork net(77, {.duplicate = 0.3, .reorder = 0.5, .delay = 0.3, .corrupt = 0.1});
  auto a = net.link_for("a");
  auto b = net.link_for("b");
  std::vector<std::uint8_t> payload(100000);
  auto rng = seeded_rng(8);
  for (auto& x : payload) x = static_cast<std::uint8_t>(rng() % 16);
  auto mails = encode_message({"A", "B", 3}, "a", "b", payload, test_key(), 8192);
  REQUIRE(mails.ok());
  std::map<std::uint32_t, OpenedPart> parts;
  std::size_t rejected = 0;
  for (int attempt = 0; attempt < 20 && parts.size() < mails->size(); ++attempt) {
    for (std::size_t i = 0; i < mails->size(); ++i) {
      if (parts.count(static_cast<std::uint32_t>(i + 1)) == 0) {
        REQUIRE(a->send("b", mails->at(i)).ok());  // resend what is missing
      }
    }
    net.deliver_delayed();
    const auto refs = b->list();
    REQUIRE(refs.ok());
    for (const auto& ref : *refs) {
      auto part = open_part(*b->fetch(ref), test_key(), "B");
      if (part.ok()) {
        const std::uint32_t index = part->header.part;
        parts.emplace(index, std::move(part).value());
      } else {
        ++rejected;
      }
      REQUIRE(b->remove(ref).ok());
    }
  }
  REQUIRE(parts.size() == mails->size());
  std::vector<OpenedPart> set;
  set.reserve(parts.size());
  for (auto& [index, part] : parts) set.push_back(std::move(part));
  auto back = reassemble(std::move(set));
  REQUIRE(back.ok());
  CHECK(*back == payload);
  CHECK(rejected <= net.stats().corrupted);
}
