// sqlpost/transport/fake_link.h — an in-memory, seeded, fault-injecting mail
// network for tests (in the library so every module's tests can use it).
//
// Contract: FakeNetwork holds one mailbox per address. link_for(address) returns a
// Link whose send() posts into the network and whose list/fetch/remove act on that
// address's mailbox. Faults are drawn from one std::mt19937_64 seeded by the
// constructor, in a fixed order per send (drop, duplicate, then per copy: corrupt,
// truncate (drawn only when its probability is not 0), delay, reorder), so the
// same seed and the same calls give the same mailboxes.
// Delayed mail is held for 1..max_delay_ticks calls of tick(). fail_send(n) makes
// the n-th send() call (1-based, counted over the whole network) fail with the given
// code and deliver nothing. With hold_until_flush(), send() only queues a mail at
// its link (counted, and refused by fail_send() as before) and flush() posts the
// queue in order, drawing the faults then (in the order send() draws them); a link
// destroyed with mail queued loses it, as a process that died before its flush, and
// fail_flush(n) makes the n-th flush() with mail queued (network-wide) fail and lose
// that mail. Links share the network state and may outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/link.h"

namespace sqlpost::transport {

struct FaultConfig {
  double drop = 0;       // probability a sent mail is lost
  double duplicate = 0;  // probability it is delivered twice
  double reorder = 0;    // probability a copy is inserted at a random position
  double delay = 0;      // probability a copy is held for some ticks
  double corrupt = 0;    // probability one random byte of a copy is changed
  double truncate = 0;   // probability a copy is cut short at a random length
  // Probability that a mail is refused after it was accepted: it is not delivered,
  // and a bounce (RFC 3464, the original returned) reaches the sender's mailbox;
  // bounce_for_size of the bounces are size refusals (552 5.3.4), the others 550 5.1.1.
  double bounce = 0;
  double bounce_for_size = 0.5;
  std::uint32_t max_delay_ticks = 3;
  // Like some real servers: a mail whose Message-ID this network accepted before for
  // the same address is discarded silently (accepted, never delivered).
  bool suppress_seen_message_ids = false;
};

struct NetworkStats {
  std::uint64_t sends = 0;  // send() calls
  std::uint64_t failed = 0;
  std::uint64_t dropped = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t reordered = 0;
  std::uint64_t delayed = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t truncated = 0;
  std::uint64_t bounced = 0;
  std::uint64_t delivered = 0;      // copies put into a mailbox (including foreign mail)
  std::uint64_t suppressed = 0;     // discarded for a Message-ID seen before
  std::uint64_t filtered = 0;       // lost to drop_if()
  std::uint64_t flushes = 0;        // flush() calls with mail queued (hold_until_flush)
  std::uint64_t lost_in_flush = 0;  // mails queued at a flush() that failed
};

class FakeNetwork {
 public:
  explicit FakeNetwork(std::uint64_t seed, FaultConfig faults = {});

  void set_faults(const FaultConfig& faults);
  std::unique_ptr<Link> link_for(std::string address);

  // Makes the nth send() call (1-based, network-wide) fail with `code`.
  void fail_send(std::uint64_t nth, Errc code = Errc::kTransient);
  // send() queues at its link until flush() (see above).
  void hold_until_flush(bool on = true);
  // Makes the nth flush() with mail queued (1-based, network-wide) fail with `code`;
  // the mail it held is lost.
  void fail_flush(std::uint64_t nth, Errc code = Errc::kIOError);
  // Every later send() for which `lose` returns true is accepted and lost.
  void drop_if(std::function<bool(std::string_view to, std::string_view mail)> lose);
  // One round: delayed mail whose time has come is delivered (in send order).
  void tick();
  // Delivers every delayed mail now.
  void deliver_delayed();
  [[nodiscard]] std::size_t in_flight() const;

  // Puts a mail (e.g. foreign mail) directly at the end of a mailbox, no faults.
  void put(const std::string& address, std::string mail);
  // The mails in a mailbox, in list() order.
  [[nodiscard]] std::vector<std::string> mailbox(const std::string& address) const;
  [[nodiscard]] NetworkStats stats() const;

  struct State;  // shared with the links

 private:
  std::shared_ptr<State> state_;
};

}  // namespace sqlpost::transport
