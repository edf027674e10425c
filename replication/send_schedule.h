// sqlpost/replication/send_schedule.h — when a partner may be sent new data
// (SQL Remote's SEND EVERY / SEND AT; docs/operations.md "Send schedules").
//
// Contract: a schedule is stored as text in sqlpost_sites.send_schedule: "" (send
// at every run), "every HH:MM" (boundaries every HH:MM from each local midnight,
// as cron's step values do: "every 07:00" is 00:00, 07:00, 14:00, 21:00) or "at
// HH:MM[,HH:MM...]" (boundaries at those local times of day). Times are the
// machine's local time (the TZ environment variable, else the system's zone;
// platform::local_time). parse_send_schedule() accepts exactly these forms
// (Errc::kInvalidArgument with the reason otherwise) and to_text() writes them
// back canonically (sorted, without duplicates). A partner is due when one of
// its boundaries lies between the first epoch closed after its last message
// (`first_pending`, the closed_at of that epoch) and `now`, both included: changes
// captured before a boundary go in the first message prepared at or after it,
// changes captured after it wait for the next one, whatever runs come between.
// A partner with nothing pending (first_pending 0) is never due, and one
// without a schedule always is. next_send() is when its next message can go:
// `now` when due, else the first boundary after `now`. Pure functions of their
// arguments and the local time zone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sqlpost {

struct SendSchedule {
  enum class Kind { kAlways, kEvery, kAt };
  Kind kind = Kind::kAlways;
  std::int64_t every_minutes = 0;        // kEvery: 1..1440
  std::vector<std::int64_t> at_minutes;  // kAt: minutes after local midnight, sorted
};

Result<SendSchedule> parse_send_schedule(std::string_view text);
// The stored form ("" for kAlways).
std::string to_text(const SendSchedule& s);
// For people: "always", "every 6h", "every 1h30m", "at 02:00, 14:00".
std::string describe(const SendSchedule& s);
// "every" schedules from an interval in seconds: whole minutes, 1m to 24h.
Result<SendSchedule> every_schedule(std::int64_t seconds);
// "at" schedules from "HH:MM[,HH:MM...]".
Result<SendSchedule> at_schedule(std::string_view times);

// The last boundary at or before `now`, and the first one after it.
std::int64_t last_boundary(const SendSchedule& s, std::int64_t now);
std::int64_t next_boundary(const SendSchedule& s, std::int64_t now);
bool send_due(const SendSchedule& s, std::int64_t first_pending, std::int64_t now);
std::int64_t next_send(const SendSchedule& s, std::int64_t first_pending, std::int64_t now);

}  // namespace sqlpost
