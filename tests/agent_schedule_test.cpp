// Tests of agent/schedule: interval parsing, the stop signal and the --every loop.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <thread>

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

TEST_CASE("wait_for returns early on a stop and sleeps the full time otherwise") {
  const StopSignal stop;
  auto start = Clock::now();
  CHECK_FALSE(stop.wait_for(seconds(1)));
  CHECK(seconds_since(start) >= 1.0);

  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (void)std::raise(SIGTERM);
  });
  start = Clock::now();
  CHECK(stop.wait_for(seconds(30)));
  CHECK(seconds_since(start) < 2.0);
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

TEST_CASE("run_every starts passes an interval apart until SIGTERM from another thread") {
  const StopSignal stop;
  int passes = 0;
  const auto start = Clock::now();
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    (void)std::raise(SIGTERM);
  });
  const int code = run_every(seconds(1), stop, [&] {
    ++passes;
    return 10 + passes;
  });
  stopper.join();
  const double elapsed = seconds_since(start);
  CHECK(passes == 3);  // at 0s, 1s and 2s
  CHECK(code == 13);
  CHECK(elapsed >= 2.5);
  CHECK(elapsed < 3.5);  // stopped during the wait, not after it
}

TEST_CASE("run_every starts the next pass at once after a pass overran the interval") {
  const StopSignal stop;
  int passes = 0;
  const auto start = Clock::now();
  run_every(seconds(1), stop, [&] {
    if (++passes == 2) {
      stop.request();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    return 0;
  });
  CHECK(passes == 2);
  CHECK(seconds_since(start) < 3.0);  // 2 x 1.2s, no extra wait between them
}

TEST_CASE("run_every runs no pass when a stop was already requested") {
  const StopSignal stop;
  stop.request();
  int passes = 0;
  CHECK(run_every(seconds(1), stop, [&] { return ++passes; }) == 0);
  CHECK(passes == 0);
}

}  // namespace sqlpost
