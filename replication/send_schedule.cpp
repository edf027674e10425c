#include "replication/send_schedule.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <limits>

#include "platform/process.h"

namespace sqlpost {
namespace {

constexpr std::int64_t kMinutesPerDay = std::int64_t{24} * 60;
constexpr std::string_view kEvery = "every ";
constexpr std::string_view kAt = "at ";

Error bad_schedule(std::string_view text, const std::string& why) {
  return make_error(Errc::kInvalidArgument,
                    "invalid send schedule '" + std::string(text) + "': " + why);
}

std::string two_digits(std::int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); }

std::string clock_text(std::int64_t minutes) {
  return two_digits(minutes / 60) + ":" + two_digits(minutes % 60);
}

// "HH:MM" (00:00 to 23:59, or 24:00 when `allow_day`) as minutes after midnight.
Result<std::int64_t> parse_clock(std::string_view text, bool allow_day) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 2 || text.size() != colon + 3) {
    return bad_schedule(text, "a time is HH:MM");
  }
  int hours = 0;
  int minutes = 0;
  const char* h_end = text.data() + colon;
  const char* m_end = text.data() + text.size();
  const auto [hp, hec] = std::from_chars(text.data(), h_end, hours);
  const auto [mp, mec] = std::from_chars(h_end + 1, m_end, minutes);
  if (hec != std::errc{} || hp != h_end || mec != std::errc{} || mp != m_end || hours < 0 ||
      minutes < 0 || minutes > 59) {
    return bad_schedule(text, "a time is HH:MM");
  }
  const std::int64_t total = std::int64_t{hours} * 60 + minutes;
  if (total >= kMinutesPerDay && !(allow_day && total == kMinutesPerDay)) {
    return bad_schedule(text,
                        allow_day ? "an interval is at most 24:00" : "a time is before 24:00");
  }
  return total;
}

// Every boundary of the local day that starts `day_offset` days after now's.
void add_day(const SendSchedule& s, std::int64_t now, int day_offset,
             std::vector<std::int64_t>& out) {
  const std::tm today = platform::local_time(static_cast<std::time_t>(now));
  auto add = [&](std::int64_t minute) {
    std::tm t = today;
    t.tm_mday += day_offset;
    t.tm_hour = static_cast<int>(minute / 60);
    t.tm_min = static_cast<int>(minute % 60);
    t.tm_sec = 0;
    t.tm_isdst = -1;
    out.push_back(static_cast<std::int64_t>(platform::local_timestamp(t)));
  };
  if (s.kind == SendSchedule::Kind::kEvery) {
    for (std::int64_t m = 0; m < kMinutesPerDay; m += s.every_minutes) {
      add(m);
    }
  } else {
    for (const std::int64_t m : s.at_minutes) {
      add(m);
    }
  }
}

std::vector<std::int64_t> boundaries_around(const SendSchedule& s, std::int64_t now) {
  std::vector<std::int64_t> out;
  for (int day = -1; day <= 1; ++day) {
    add_day(s, now, day, out);
  }
  return out;
}

}  // namespace

Result<SendSchedule> every_schedule(std::int64_t seconds) {
  if (seconds < 60 || seconds > kMinutesPerDay * 60 || seconds % 60 != 0) {
    return make_error(Errc::kInvalidArgument,
                      "a send interval is whole minutes from 1m to 24h (e.g. 30m, 6h)");
  }
  SendSchedule s;
  s.kind = SendSchedule::Kind::kEvery;
  s.every_minutes = seconds / 60;
  return s;
}

Result<SendSchedule> at_schedule(std::string_view times) {
  SendSchedule s;
  s.kind = SendSchedule::Kind::kAt;
  std::size_t start = 0;
  for (;;) {
    const auto comma = times.find(',', start);
    const auto item = times.substr(start, comma == std::string_view::npos ? comma : comma - start);
    SQLPOST_TRY_ASSIGN(const std::int64_t minute, parse_clock(item, false));
    s.at_minutes.push_back(minute);
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  std::sort(s.at_minutes.begin(), s.at_minutes.end());
  s.at_minutes.erase(std::unique(s.at_minutes.begin(), s.at_minutes.end()), s.at_minutes.end());
  return s;
}

Result<SendSchedule> parse_send_schedule(std::string_view text) {
  if (text.empty()) {
    return SendSchedule{};
  }
  if (text.starts_with(kEvery)) {
    SQLPOST_TRY_ASSIGN(const std::int64_t minutes, parse_clock(text.substr(kEvery.size()), true));
    return every_schedule(minutes * 60);
  }
  if (text.starts_with(kAt)) {
    return at_schedule(text.substr(kAt.size()));
  }
  return bad_schedule(text, R"(expected "every HH:MM" or "at HH:MM[,HH:MM...]")");
}

std::string to_text(const SendSchedule& s) {
  switch (s.kind) {
    case SendSchedule::Kind::kAlways: return {};
    case SendSchedule::Kind::kEvery: return std::string(kEvery) + clock_text(s.every_minutes);
    case SendSchedule::Kind::kAt: break;
  }
  std::string out(kAt);
  for (std::size_t i = 0; i < s.at_minutes.size(); ++i) {
    out += (i > 0 ? "," : "") + clock_text(s.at_minutes[i]);
  }
  return out;
}

std::string describe(const SendSchedule& s) {
  switch (s.kind) {
    case SendSchedule::Kind::kAlways: return "always";
    case SendSchedule::Kind::kEvery: {
      const std::int64_t h = s.every_minutes / 60;
      const std::int64_t m = s.every_minutes % 60;
      return "every " + (h > 0 ? std::to_string(h) + "h" : "") +
             (m > 0 ? std::to_string(m) + "m" : "");
    }
    case SendSchedule::Kind::kAt: break;
  }
  std::string out = "at ";
  for (std::size_t i = 0; i < s.at_minutes.size(); ++i) {
    out += (i > 0 ? ", " : "") + clock_text(s.at_minutes[i]);
  }
  return out;
}

std::int64_t last_boundary(const SendSchedule& s, std::int64_t now) {
  std::int64_t best = std::numeric_limits<std::int64_t>::min();
  for (const std::int64_t b : boundaries_around(s, now)) {
    if (b <= now) {
      best = std::max(best, b);
    }
  }
  return best;
}

std::int64_t next_boundary(const SendSchedule& s, std::int64_t now) {
  std::int64_t best = std::numeric_limits<std::int64_t>::max();
  for (const std::int64_t b : boundaries_around(s, now)) {
    if (b > now) {
      best = std::min(best, b);
    }
  }
  return best;
}

bool send_due(const SendSchedule& s, std::int64_t first_pending, std::int64_t now) {
  if (s.kind == SendSchedule::Kind::kAlways) {
    return true;
  }
  return first_pending > 0 && first_pending <= last_boundary(s, now);
}

std::int64_t next_send(const SendSchedule& s, std::int64_t first_pending, std::int64_t now) {
  if (s.kind == SendSchedule::Kind::kAlways || send_due(s, first_pending, now)) {
    return now;
  }
  return next_boundary(s, now);
}

}  // namespace sqlpost
