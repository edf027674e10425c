#include "agent/log.h"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sqlpost {
namespace {

constexpr std::string_view kLoggerName = "sqlpost";
// spdlog's own name for warn is "warning"; the documented format says "warn".
constexpr char kLevelFlag = '*';
constexpr char kSiteFlag = '&';
// One format for stderr and the file: UTC time, site, program and pid, level, text.
constexpr std::string_view kPattern = "%Y-%m-%dT%H:%M:%S.%eZ %& sqlpost[%P] [%*] %v";

std::mutex& site_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::string& site_slot() {
  static std::string site = "-";
  return site;
}

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    default: return "log";
  }
}

class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = level_name(msg.level);
    dest.append(name.data(), name.data() + name.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag>();
  }
};

class SiteFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& /*msg*/, const std::tm& /*tm*/,
              spdlog::memory_buf_t& dest) override {
    const std::lock_guard<std::mutex> guard(site_mutex());
    const std::string& site = site_slot();
    dest.append(site.data(), site.data() + site.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SiteFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<LevelFlag>(kLevelFlag)
      .add_flag<SiteFlag>(kSiteFlag)
      .set_pattern(std::string(kPattern));
  return formatter;
}

spdlog::sink_ptr make_stderr_sink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(make_formatter());
  return sink;
}

// Throws spdlog::spdlog_ex when the file cannot be opened.
spdlog::sink_ptr make_file_sink(const LogOptions& options) {
  auto sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
      options.file, options.max_bytes, options.max_files);
  sink->set_formatter(make_formatter());
  return sink;
}

std::shared_ptr<spdlog::logger> make_logger(std::vector<spdlog::sink_ptr> sinks, bool verbose) {
  auto logger =
      std::make_shared<spdlog::logger>(std::string(kLoggerName), sinks.begin(), sinks.end());
  const auto level = verbose ? spdlog::level::debug : spdlog::level::info;
  logger->set_level(level);
  logger->flush_on(spdlog::level::debug);  // few lines: each one reaches the file at once
  return logger;
}

std::mutex& logger_mutex() {
  static std::mutex mutex;
  return mutex;
}

std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> logger = make_logger({make_stderr_sink()}, false);
  return logger;
}

std::shared_ptr<spdlog::logger> current_logger() {
  const std::lock_guard<std::mutex> guard(logger_mutex());
  return logger_slot();
}

void install_logger(std::shared_ptr<spdlog::logger> logger) {
  const std::lock_guard<std::mutex> guard(logger_mutex());
  logger_slot() = std::move(logger);
}

void write(spdlog::level::level_enum level, std::string_view text) {
  try {
    current_logger()->log(level, spdlog::string_view_t(text.data(), text.size()));
  } catch (const std::exception&) {
    // Logging must never take the agent down; spdlog reports its own sink errors.
  }
}

}  // namespace

Result<> init_logging(const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks{make_stderr_sink()};
  if (!options.file.empty()) {
    if (options.max_bytes == 0) {
      return make_error(Errc::kConfig,
                        "log file " + options.file + ": max_bytes must be at least 1");
    }
    try {
      sinks.push_back(make_file_sink(options));
    } catch (const std::exception& e) {
      return make_error(Errc::kConfig,
                        "cannot open log file " + options.file + ": " + std::string(e.what()));
    }
  }
  install_logger(make_logger(std::move(sinks), options.verbose));
  return success();
}

void set_log_site(std::string_view site) {
  const std::lock_guard<std::mutex> guard(site_mutex());
  site_slot() = site.empty() ? "-" : std::string(site);
}

void reset_logging() { install_logger(make_logger({make_stderr_sink()}, false)); }

void log_info(std::string_view text) { write(spdlog::level::info, text); }
void log_warn(std::string_view text) { write(spdlog::level::warn, text); }
void log_error(std::string_view text) { write(spdlog::level::err, text); }
void log_debug(std::string_view text) { write(spdlog::level::debug, text); }

}  // namespace sqlpost
