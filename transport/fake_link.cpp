#include "transport/fake_link.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <utility>

#include "transport/limits.h"

namespace sqlpost::transport {

struct StoredMail {
  std::string id;
  std::string text;
};

struct HeldMail {
  std::uint64_t due_tick = 0;
  std::string to;
  std::string text;
};

struct FakeNetwork::State {
  explicit State(std::uint64_t seed) : rng(seed) {}

  std::mt19937_64 rng;
  FaultConfig faults;
  NetworkStats stats;
  std::uint64_t tick = 0;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, Errc> failing_sends;
  std::map<std::uint64_t, Errc> failing_flushes;
  bool hold_until_flush = false;
  std::map<std::string, std::vector<StoredMail>, std::less<>> boxes;
  std::vector<HeldMail> held;
  std::map<std::string, std::set<std::string>, std::less<>> seen_ids;  // address -> Message-IDs
  std::function<bool(std::string_view, std::string_view)> lose;

  bool chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng) < p;
  }
  std::size_t uniform(std::size_t lo, std::size_t hi) {  // inclusive
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  }

  void store(const std::string& to, std::string text, bool at_random_position) {
    auto& box = boxes[to];
    StoredMail mail{"fake-" + std::to_string(next_id++), std::move(text)};
    const std::size_t pos = at_random_position ? uniform(0, box.size()) : box.size();
    box.insert(box.begin() + static_cast<std::ptrdiff_t>(pos), std::move(mail));
    ++stats.delivered;
  }

  void corrupt(std::string& text) {
    if (text.empty()) return;
    const std::size_t pos = uniform(0, text.size() - 1);
    const auto mask = static_cast<char>(uniform(1, 255));
    text[pos] = static_cast<char>(text[pos] ^ mask);
    ++stats.corrupted;
  }

  // A mail server or mailbox that cut the mail short (disk full, a broken
  // connection): what is left is a prefix of it.
  void truncate(std::string& text) {
    if (text.empty()) return;
    text.resize(uniform(0, text.size() - 1));
    ++stats.truncated;
  }

  // Applies per-copy faults, then delivers or holds the copy.
  void route_copy(const std::string& to, std::string text) {
    if (chance(faults.corrupt)) corrupt(text);
    if (chance(faults.truncate)) truncate(text);
    if (chance(faults.delay)) {
      held.push_back(HeldMail{tick + uniform(1, std::max<std::uint32_t>(1, faults.max_delay_ticks)),
                              to, std::move(text)});
      ++stats.delayed;
      return;
    }
    const bool reorder = chance(faults.reorder);
    if (reorder) ++stats.reordered;
    store(to, std::move(text), reorder);
  }

  // What a mail server sends back for a mail it refused after accepting it.
  std::string bounce_report(std::string_view from, std::string_view to, std::string_view original) {
    const bool size = chance(faults.bounce_for_size);
    const std::string status = size ? "5.3.4" : "5.1.1";
    const std::string reply =
        size ? "552 5.3.4 Message too big for system" : "550 5.1.1 User unknown";
    const std::string b = "fake-bounce-" + std::to_string(next_id);
    return "From: MAILER-DAEMON@fake.test\r\nTo: <" + std::string(from) +
           ">\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <" + b +
           "@fake.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; "
           "report-type=delivery-status; boundary=\"" +
           b + "\"\r\n\r\n--" + b +
           "\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n--" +
           b +
           "\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; fake.test\r\n"
           "\r\nFinal-Recipient: rfc822; " +
           std::string(to) + "\r\nAction: failed\r\nStatus: " + status +
           "\r\nDiagnostic-Code: smtp; " + reply + "\r\n\r\n--" + b +
           "\r\nContent-Type: message/rfc822\r\n\r\n" + std::string(original) + "\r\n--" + b +
           "--\r\n";
  }

  Result<> send(std::string_view from, std::string_view to, std::string_view text) {
    if (chance(faults.bounce)) {
      ++stats.sends;
      ++stats.bounced;
      store(std::string(from), bounce_report(from, to, text), false);
      return success();
    }
    return send(to, text);
  }

  Result<> send(std::string_view to, std::string_view text) {
    SQLPOST_TRY(admit());
    deliver(to, text);
    return success();
  }

  // A send() counted, and refused when fail_send() chose it.
  Result<> admit() {
    const std::uint64_t nth = ++stats.sends;
    if (auto it = failing_sends.find(nth); it != failing_sends.end()) {
      ++stats.failed;
      return make_error(it->second, "injected failure of send #" + std::to_string(nth));
    }
    return success();
  }

  // A mail a link held until its flush(): the faults send() draws, in the same order.
  void post(std::string_view from, std::string_view to, std::string_view text) {
    if (chance(faults.bounce)) {
      ++stats.bounced;
      store(std::string(from), bounce_report(from, to, text), false);
      return;
    }
    deliver(to, text);
  }

  void deliver(std::string_view to, std::string_view text) {
    if (faults.suppress_seen_message_ids && seen_before(to, text)) {
      ++stats.suppressed;
      return;
    }
    if (lose && lose(to, text)) {
      ++stats.filtered;
      return;
    }
    if (chance(faults.drop)) {
      ++stats.dropped;
      return;
    }
    const bool twice = chance(faults.duplicate);
    if (twice) ++stats.duplicated;
    route_copy(std::string(to), std::string(text));
    if (twice) route_copy(std::string(to), std::string(text));
  }

  // Records the mail's Message-ID for `to`; true when it was recorded before.
  bool seen_before(std::string_view to, std::string_view text) {
    constexpr std::string_view kField = "\r\nMessage-ID: ";
    const std::size_t at = text.find(kField);
    if (at == std::string_view::npos) return false;
    const std::size_t value = at + kField.size();
    const std::string id(text.substr(value, text.find("\r\n", value) - value));
    return !seen_ids[std::string(to)].insert(id).second;
  }

  void release(bool all) {
    std::vector<HeldMail> still;
    for (HeldMail& h : held) {
      if (all || h.due_tick <= tick) {
        const bool reorder = chance(faults.reorder);
        if (reorder) ++stats.reordered;
        store(h.to, std::move(h.text), reorder);
      } else {
        still.push_back(std::move(h));
      }
    }
    held = std::move(still);
  }

  std::vector<StoredMail>::iterator find(std::vector<StoredMail>& box, const std::string& id) {
    return std::find_if(box.begin(), box.end(), [&](const StoredMail& m) { return m.id == id; });
  }
};

namespace {

class FakeLink final : public Link {
 public:
  FakeLink(std::shared_ptr<FakeNetwork::State> state, std::string address)
      : state_(std::move(state)), address_(std::move(address)) {}

  Result<> send(std::string_view to_address, std::string_view mail) override {
    if (to_address.empty()) return make_error(Errc::kInvalidArgument, "empty address");
    if (!state_->hold_until_flush) return state_->send(address_, to_address, mail);
    SQLPOST_TRY(state_->admit());
    queued_.emplace_back(std::string(to_address), std::string(mail));
    return success();
  }

  Result<> flush() override {
    if (queued_.empty()) return success();
    const std::uint64_t nth = ++state_->stats.flushes;
    if (auto it = state_->failing_flushes.find(nth); it != state_->failing_flushes.end()) {
      state_->stats.lost_in_flush += queued_.size();
      queued_.clear();
      return make_error(it->second, "injected failure of flush #" + std::to_string(nth));
    }
    for (const auto& [to, text] : queued_) state_->post(address_, to, text);
    queued_.clear();
    return success();
  }

  Result<std::vector<MailRef>> list() override {
    std::vector<MailRef> refs;
    for (const StoredMail& m : state_->boxes[address_]) refs.push_back({m.id, m.text.size()});
    return refs;
  }

  Result<std::string> fetch(const MailRef& ref) override {
    auto& box = state_->boxes[address_];
    const auto it = state_->find(box, ref.id);
    if (it == box.end()) return make_error(Errc::kNotFound, "no mail " + ref.id);
    if (it->text.size() > kMaxMailBytes) {
      return make_error(Errc::kLimitExceeded, "mail " + ref.id + " is larger than kMaxMailBytes");
    }
    return it->text;
  }

  Result<std::string> fetch_head(const MailRef& ref, std::size_t max_bytes) override {
    auto& box = state_->boxes[address_];
    const auto it = state_->find(box, ref.id);
    if (it == box.end()) return make_error(Errc::kNotFound, "no mail " + ref.id);
    return it->text.substr(0, max_bytes);
  }

  Result<> remove(const MailRef& ref) override {
    auto& box = state_->boxes[address_];
    const auto it = state_->find(box, ref.id);
    if (it == box.end()) return make_error(Errc::kNotFound, "no mail " + ref.id);
    box.erase(it);
    return success();
  }

 private:
  std::shared_ptr<FakeNetwork::State> state_;
  std::string address_;
  std::vector<std::pair<std::string, std::string>> queued_;  // to, mail: not flushed yet
};

}  // namespace

FakeNetwork::FakeNetwork(std::uint64_t seed, FaultConfig faults)
    : state_(std::make_shared<State>(seed)) {
  state_->faults = faults;
}

void FakeNetwork::set_faults(const FaultConfig& faults) { state_->faults = faults; }

std::unique_ptr<Link> FakeNetwork::link_for(std::string address) {
  return std::make_unique<FakeLink>(state_, std::move(address));
}

void FakeNetwork::fail_send(std::uint64_t nth, Errc code) { state_->failing_sends[nth] = code; }

void FakeNetwork::hold_until_flush(bool on) { state_->hold_until_flush = on; }

void FakeNetwork::fail_flush(std::uint64_t nth, Errc code) { state_->failing_flushes[nth] = code; }

void FakeNetwork::drop_if(std::function<bool(std::string_view, std::string_view)> lose) {
  state_->lose = std::move(lose);
}

void FakeNetwork::tick() {
  ++state_->tick;
  state_->release(false);
}

void FakeNetwork::deliver_delayed() { state_->release(true); }

std::size_t FakeNetwork::in_flight() const { return state_->held.size(); }

void FakeNetwork::put(const std::string& address, std::string mail) {
  state_->store(address, std::move(mail), false);
}

std::vector<std::string> FakeNetwork::mailbox(const std::string& address) const {
  std::vector<std::string> out;
  const auto it = state_->boxes.find(address);
  if (it == state_->boxes.end()) return out;
  for (const StoredMail& m : it->second) out.push_back(m.text);
  return out;
}

NetworkStats FakeNetwork::stats() const { return state_->stats; }

}  // namespace sqlpost::transport
