// sqlpost/agent/schedule.h — the long-running `--every` loop.
//
// Contract: parse_interval() accepts "30s", "5m", "2h", "1d" or a plain number
// of seconds, from 1s to 7d; anything else is Errc::kInvalidArgument with a
// message naming the text. StopSignal turns the OS's stop requests (SIGTERM and
// SIGINT; on Windows Ctrl+C, Ctrl+Break, console close: platform::StopRequests)
// into a stop request (the handler only sets an atomic flag) and restores the
// previous handlers when destroyed; at most one StopSignal may exist at a time.
// run_every() runs `pass` again and again, starting passes `interval` apart
// (at once when a pass overran), and returns the exit code of the last pass
// (0 if none ran) once a stop is requested. A pass always runs to its end: the
// stop is only checked between passes and while waiting. run_every() reads the
// time and waits through a Waiter: StopSignal in the program (the steady clock),
// a scripted one in tests, so their verdicts never depend on the machine's speed.
// With a Wakeup (push delivery), a pass also starts as soon as it says so.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include "common/result.h"
#include "platform/process.h"

namespace sqlpost {

inline constexpr std::chrono::seconds kMinInterval{1};
inline constexpr std::chrono::seconds kMaxInterval{7 * 24 * 3600};

Result<std::chrono::seconds> parse_interval(std::string_view text);

// What the --every loop needs of time and stop requests.
class Waiter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  Waiter(Waiter&&) = delete;
  Waiter& operator=(Waiter&&) = delete;
  virtual ~Waiter() = default;
  [[nodiscard]] virtual TimePoint now() const = 0;
  [[nodiscard]] virtual bool requested() const = 0;
  // Waits until `deadline` or a stop request; true when a stop was requested.
  virtual bool wait_until(TimePoint deadline) const = 0;
};

class StopSignal final : public Waiter {
 public:
  StopSignal() = default;  // installs the handlers and clears any earlier stop request
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  StopSignal(StopSignal&&) = delete;
  StopSignal& operator=(StopSignal&&) = delete;
  ~StopSignal() override = default;  // restores the handlers in force before construction

  [[nodiscard]] TimePoint now() const override;
  [[nodiscard]] bool requested() const override;
  // Asks for a stop as SIGTERM would (for callers that stop the loop themselves).
  void request() const;
  // Sleeps until `duration` passed or a stop is requested; true when stopped.
  bool wait_for(std::chrono::seconds duration) const;
  bool wait_until(TimePoint deadline) const override;

 private:
  platform::StopRequests handlers_;
};

// What may start the next pass before its time (push delivery, agent/push.h).
class Wakeup {
 public:
  Wakeup() = default;
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  Wakeup(Wakeup&&) = delete;
  Wakeup& operator=(Wakeup&&) = delete;
  virtual ~Wakeup() = default;
  // Called before each pass starts.
  virtual void pass_starting() = 0;
  // Waits at most `slice` (it may return sooner); true when a pass should start now.
  virtual bool wait(std::chrono::milliseconds slice) = 0;
};

int run_every(std::chrono::seconds interval, const Waiter& waiter,
              const std::function<int()>& pass);
// The same, but `wakeup` may start a pass early: between passes, the wait is cut into
// slices of at most kWakeSlice, each spent in wakeup.wait(), and a stop request is
// looked at after every slice.
inline constexpr std::chrono::milliseconds kWakeSlice{1000};
int run_every(std::chrono::seconds interval, const Waiter& waiter, const std::function<int()>& pass,
              Wakeup& wakeup);

}  // namespace sqlpost
