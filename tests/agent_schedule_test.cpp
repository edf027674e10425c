// Tests of agent/schedule: interval parsing, the stop signal and the --every loop.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <thread>
#include <vector>

#include "agent/schedule.h"

namespace sqlpost {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

extern "C" void test_handler(int /*signal*/) {}

using Handler = void (*)(int);

bool handler_is(int signal, Handler expected) {
  struct sigaction action {};
  sigaction(signal, nullptr, &action);
  return action.sa_handler == expected;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TEST_CASE("parse_interval accepts units and plain seconds") {
  CHECK(*parse_interval("30s") == seconds(30));
  CHECK(*parse_interval("5m") == seconds(300));
  CHECK(*parse_interval("2h") == seconds(7200));
  CHECK(*parse_interval("1d") == seconds(86400));
  CHECK(*parse_interval("7d") == seconds(604800));
  CHECK(*parse_interval("1") == seconds(1));
  CHECK(*parse_interval("1s") == seconds(1));
  CHECK(*parse_interval("604800") == seconds(604800));
  CHECK(*parse_interval("168h") == seconds(604800));
}

TEST_CASE("parse_interval rejects malformed or out-of-range text") {
  for (const char* bad : {"", "0", "0s", "s", "m5", "-5", "+5", " 5", "5 ", "5x", "5ms", "1.5h",
                          "8d", "604801", "169h", "99999999999999999999999", "1w"}) {
    CAPTURE(bad);
    auto result = parse_interval(bad);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == Errc::kInvalidArgument);
    CHECK(result.error().message.find("invalid interval") != std::string::npos);
  }
}

TEST_CASE("StopSignal restores the previous handlers") {
  struct sigaction original_term {};
  struct sigaction original_int {};
  sigaction(SIGTERM, nullptr, &original_term);
  sigaction(SIGINT, nullptr, &original_int);
  signal(SIGTERM, test_handler);  // NOLINT(cert-err33-c)
  signal(SIGINT, SIG_DFL);        // NOLINT(cert-err33-c)
  {
    const StopSignal stop;
    CHECK_FALSE(handler_is(SIGTERM, test_handler));
    CHECK_FALSE(handler_is(SIGINT, SIG_DFL));
    CHECK_FALSE(stop.requested());
    REQUIRE(std::raise(SIGINT) == 0);
    CHECK(stop.requested());
  }
  CHECK(handler_is(SIGTERM, test_handler));
  CHECK(handler_is(SIGINT, SIG_DFL));
  sigaction(SIGTERM, &original_term, nullptr);
  sigaction(SIGINT, &original_int, nullptr);
}

TEST_CASE("wait_for sleeps at least the full time when no stop comes") {
  const StopSignal stop;
  const auto start = Clock::now();
  CHECK_FALSE(stop.wait_for(seconds(1)));
  CHECK(seconds_since(start) >= 1.0);  // a lower bound only: never speed-dependent
}

TEST_CASE("wait_for returns when SIGTERM arrives from another thread") {
  const StopSignal stop;
  // Raised at once: before or during the wait, the wait must end with "stopped"
  // (without the stop it would sleep the full 600 s and ctest's timeout would say so).
  std::thread stopper([] { (void)std::raise(SIGTERM); });
  CHECK(stop.wait_for(seconds(600)));
  stopper.join();
}

TEST_CASE("run_every stops after SIGTERM raised inside a pass, which runs to its end") {
  const StopSignal stop;
  int passes = 0;
  bool finished = false;
  const int code = run_every(seconds(1), stop, [&] {
    ++passes;
    (void)std::raise(SIGTERM);
    finished = true;  // the signal does not cut the pass short
    return 3;
  });
  CHECK(code == 3);
  CHECK(passes == 1);
  CHECK(finished);
}

namespace {

// Scripted time: a pass "takes" what the test says by advancing the clock, a wait
// jumps to its deadline, and a stop arrives during the wait the test names.
class ScriptedWaiter final : public Waiter {
 public:
  [[nodiscard]] TimePoint now() const override { return now_; }
  [[nodiscard]] bool requested() const override { return stopped_; }
  bool wait_until(TimePoint deadline) const override {
    ++waits_;
    if (waits_ == stop_in_wait_) {
      now_ += (deadline - now_) / 2;  // the stop comes halfway through the wait
      stopped_ = true;
      return true;
    }
    now_ = std::max(now_, deadline);
    return stopped_;
  }
  void advance(std::chrono::milliseconds by) { now_ += by; }
  void stop_during_wait(int n) { stop_in_wait_ = n; }
  void stop_now() { stopped_ = true; }
  [[nodiscard]] int waits() const { return waits_; }
  [[nodiscard]] std::int64_t elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now_ - TimePoint{}).count();
  }

 private:
  mutable TimePoint now_{};
  mutable bool stopped_ = false;
  mutable int waits_ = 0;
  int stop_in_wait_ = 0;
};

}  // namespace

TEST_CASE("run_every starts passes an interval apart and stops during a wait") {
  ScriptedWaiter waiter;
  waiter.stop_during_wait(3);
  std::vector<std::int64_t> starts;
  const int code = run_every(seconds(1), waiter, [&] {
    starts.push_back(waiter.elapsed_ms());
    waiter.advance(std::chrono::milliseconds(200));  // the pass takes 0.2 s
    return 10 + static_cast<int>(starts.size());
  });
  CHECK(starts == std::vector<std::int64_t>{0, 1000, 2000});
  CHECK(code == 13);
  CHECK(waiter.waits() == 3);
  CHECK(waiter.elapsed_ms() == 2600);  // stopped halfway through the third wait
}

TEST_CASE("run_every starts the next pass at once after a pass overran the interval") {
  ScriptedWaiter waiter;
  std::vector<std::int64_t> starts;
  run_every(seconds(1), waiter, [&] {
    starts.push_back(waiter.elapsed_ms());
    waiter.advance(std::chrono::milliseconds(1200));  // longer than the interval
    if (starts.size() == 3) {
      waiter.stop_now();
    }
    return 0;
  });
  CHECK(starts == std::vector<std::int64_t>{0, 1200, 2400});  // no extra wait between them
}

namespace {

// A Wakeup on scripted time: each wait() takes its whole slice (or half of it on the
// call that wakes), so the test sees where the early pass starts.
class ScriptedWakeup final : public Wakeup {
 public:
  ScriptedWakeup(ScriptedWaiter& waiter, int wake_on_call)
      : waiter_(waiter), wake_on_(wake_on_call) {}
  void pass_starting() override { ++passes_starting_; }
  bool wait(std::chrono::milliseconds slice) override {
    slices_.push_back(slice.count());
    if (static_cast<int>(slices_.size()) == wake_on_) {
      waiter_.advance(slice / 2);
      return true;
    }
    waiter_.advance(slice);
    return false;
  }
  [[nodiscard]] const std::vector<std::int64_t>& slices() const { return slices_; }
  [[nodiscard]] int passes_starting() const { return passes_starting_; }

 private:
  ScriptedWaiter& waiter_;
  int wake_on_;
  int passes_starting_ = 0;
  std::vector<std::int64_t> slices_;
};

}  // namespace

TEST_CASE("run_every with a wakeup starts a pass early and waits in slices of at most 1 s") {
  ScriptedWaiter waiter;
  ScriptedWakeup wakeup(waiter, 4);
  std::vector<std::int64_t> starts;
  const int code = run_every(
      seconds(10), waiter,
      [&] {
        starts.push_back(waiter.elapsed_ms());
        waiter.advance(std::chrono::milliseconds(200));
        if (starts.size() == 2) {
          waiter.stop_now();
        }
        return 7;
      },
      wakeup);
  CHECK(code == 7);
  CHECK(starts == std::vector<std::int64_t>{0, 3700});  // 0.2 s pass, 3 slices, half a slice
  CHECK(wakeup.slices() == std::vector<std::int64_t>{1000, 1000, 1000, 1000});
  CHECK(wakeup.passes_starting() == 2);
}

TEST_CASE("run_every with a wakeup that never wakes keeps the interval") {
  ScriptedWaiter waiter;
  ScriptedWakeup wakeup(waiter, 0);
  std::vector<std::int64_t> starts;
  run_every(
      seconds(3), waiter,
      [&] {
        starts.push_back(waiter.elapsed_ms());
        waiter.advance(std::chrono::milliseconds(500));
        if (starts.size() == 3) {
          waiter.stop_now();
        }
        return 0;
      },
      wakeup);
  CHECK(starts == std::vector<std::int64_t>{0, 3000, 6000});
  // 2.5 s left after each pass: slices of 1 s, 1 s, 0.5 s
  CHECK(wakeup.slices() == std::vector<std::int64_t>{1000, 1000, 500, 1000, 1000, 500});
}

TEST_CASE("run_every runs no pass when a stop was already requested") {
  const StopSignal stop;
  stop.request();
  int passes = 0;
  CHECK(run_every(seconds(1), stop, [&] { return ++passes; }) == 0);
  CHECK(passes == 0);
}

}  // namespace sqlpost
