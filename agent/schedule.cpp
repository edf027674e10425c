#include "agent/schedule.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <thread>

#include "agent/log.h"

namespace sqlpost {
namespace {

constexpr std::chrono::milliseconds kWaitSlice{100};

Error bad_interval(std::string_view text, const std::string& why) {
  return make_error(Errc::kInvalidArgument,
                    "invalid interval '" + std::string(text) + "': " + why +
                        " (use a number of seconds or 30s, 5m, 2h, 1d; from 1s to 7d)");
}

// Seconds per unit suffix, or 0 for an unknown suffix.
std::uint64_t unit_seconds(std::string_view unit) {
  if (unit.empty() || unit == "s") {
    return 1;
  }
  if (unit == "m") {
    return 60;
  }
  if (unit == "h") {
    return 3600;
  }
  if (unit == "d") {
    return 86400;
  }
  return 0;
}

}  // namespace

Result<std::chrono::seconds> parse_interval(std::string_view text) {
  std::uint64_t count = 0;
  const char* begin = text.data();
  const char* end = begin + text.size();
  const auto [rest, ec] = std::from_chars(begin, end, count);
  if (text.empty() || ec == std::errc::invalid_argument) {
    return bad_interval(text, "it must start with a number");
  }
  const std::uint64_t unit = unit_seconds(std::string_view(rest, end - rest));
  if (unit == 0) {
    return bad_interval(text, "unknown unit '" + std::string(rest, end) + "'");
  }
  const auto max = static_cast<std::uint64_t>(kMaxInterval.count());
  if (ec == std::errc::result_out_of_range || count > max / unit) {
    return bad_interval(text, "longer than 7d");
  }
  const std::chrono::seconds interval{static_cast<std::int64_t>(count * unit)};
  if (interval < kMinInterval) {
    return bad_interval(text, "shorter than 1s");
  }
  return interval;
}

bool StopSignal::requested() const { return platform::StopRequests::requested(); }

Waiter::TimePoint StopSignal::now() const { return std::chrono::steady_clock::now(); }

void StopSignal::request() const { platform::StopRequests::request(); }

bool StopSignal::wait_until(TimePoint deadline) const {
  while (!requested()) {
    const auto current = std::chrono::steady_clock::now();
    if (current >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(deadline - current, kWaitSlice));
  }
  return true;
}

bool StopSignal::wait_for(std::chrono::seconds duration) const {
  return wait_until(std::chrono::steady_clock::now() + duration);
}

int run_every(std::chrono::seconds interval, const Waiter& waiter,
              const std::function<int()>& pass) {
  int exit_code = 0;
  while (!waiter.requested()) {
    const auto next_start = waiter.now() + interval;
    exit_code = pass();
    if (waiter.wait_until(next_start)) {
      break;
    }
  }
  log_info("stop requested; exiting after the current pass");
  return exit_code;
}

int run_every(std::chrono::seconds interval, const Waiter& waiter, const std::function<int()>& pass,
              Wakeup& wakeup) {
  int exit_code = 0;
  while (!waiter.requested()) {
    const auto next_start = waiter.now() + interval;
    wakeup.pass_starting();
    exit_code = pass();
    for (auto now = waiter.now(); now < next_start && !waiter.requested(); now = waiter.now()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_start - now);
      if (wakeup.wait(std::min(left, kWakeSlice))) {
        break;
      }
    }
  }
  log_info("stop requested; exiting after the current pass");
  return exit_code;
}

}  // namespace sqlpost
