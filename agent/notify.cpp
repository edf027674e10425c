#include "agent/notify.h"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <utility>

#include "agent/mail_settings.h"
#include "platform/process.h"
#include "schema/metadata.h"
#include "transport/codec.h"
#include "transport/mail_links.h"

namespace sqlpost {
namespace {

using json = nlohmann::json;
constexpr const char* kNotifiedKey = "alerts_notified";

using AlertsByKey = std::map<std::pair<std::string, std::string>, Alert>;  // (kind, partner)

AlertsByKey by_key(const std::vector<Alert>& alerts) {
  AlertsByKey out;
  for (const auto& a : alerts) {
    out.emplace(std::pair{a.kind, a.partner}, a);
  }
  return out;
}

Result<AlertsByKey> load_notified(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT value FROM sqlpost_meta WHERE key = ?"));
  st.bind(1, std::string_view(kNotifiedKey));
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  std::vector<Alert> alerts;
  const json list = row ? json::parse(st.column_text(0), nullptr, false) : json::array();
  if (!list.is_array()) {
    return make_error(Errc::kDatabase, "damaged sqlpost metadata: sqlpost_meta row '" +
                                           std::string(kNotifiedKey) + "' is not a JSON list");
  }
  for (const auto& entry : list) {
    if (entry.is_array() && entry.size() == 3 && entry[0].is_string() && entry[1].is_string() &&
        entry[2].is_string()) {
      alerts.push_back({entry[0].get<std::string>(), entry[1].get<std::string>(), 0,
                        entry[2].get<std::string>()});
    }
  }
  return by_key(alerts);
}

Result<> store_notified(Database& db, const AlertsByKey& alerts) {
  json list = json::array();
  for (const auto& [key, a] : alerts) {
    list.push_back(json::array({a.kind, a.partner, a.text}));
  }
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT OR REPLACE INTO sqlpost_meta(key, value) VALUES (?, ?)"));
  st.bind(1, std::string_view(kNotifiedKey))
      .bind(2, list.dump(-1, ' ', false, json::error_handler_t::replace));
  return st.run();
}

std::vector<std::string> split_addresses(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma - start);
    const std::size_t first = part.find_first_not_of(' ');
    if (first != std::string::npos) {
      out.push_back(part.substr(first, part.find_last_not_of(' ') - first + 1));
    }
    if (comma == std::string::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

// Where and how notices go, read once per pass.
struct Channels {
  std::string site;
  std::string site_address;
  std::vector<std::string> mailto;
  std::string hook;
  std::unique_ptr<transport::Link> smtp;  // relay or direct; null: mail cannot be sent
  std::string smtp_problem;
};

Result<Channels> open_channels(Database& db) {
  Channels c;
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  c.site = local.name;
  c.site_address = local.address;
  SQLPOST_TRY_ASSIGN(const auto mailto, get_config(db, "alert.mailto"));
  SQLPOST_TRY_ASSIGN(const auto hook, get_config(db, "alert.hook"));
  c.mailto = split_addresses(mailto.value_or(""));
  c.hook = hook.value_or("");
  if (c.mailto.empty()) {
    return c;
  }
  SQLPOST_TRY_ASSIGN(const auto link, get_config(db, "link"));
  if (link.value_or("") != "smtp") {
    c.smtp_problem = "alert.mailto needs link=smtp (the site's own SMTP settings)";
    return c;
  }
  auto settings = load_mail_settings(db, local);
  auto smtp = settings.ok() ? transport::open_outgoing_link(std::move(settings).value())
                            : Result<std::unique_ptr<transport::Link>>(settings.error());
  if (!smtp.ok()) {
    c.smtp_problem = "alert mail: " + smtp.error().message;
    return c;
  }
  c.smtp = std::move(smtp).value();
  return c;
}

// Mails and runs the hook for one change; false when any of it failed.
bool tell(Channels& c, const Alert& a, const char* state, std::vector<std::string>& warnings) {
  bool told = true;
  const std::string what = std::string(state) + " " + a.kind +
                           (a.partner.empty() ? std::string() : " (" + a.partner + ")");
  for (const auto& to : c.mailto) {
    if (!c.smtp) {
      warnings.push_back(c.smtp_problem);
      told = false;
      break;
    }
    const std::string subject = "sqlpost " + c.site + ": alert " + what;
    const std::string body = "Site " + c.site + " <" + c.site_address + ">\n\nAlert " + what +
                             ":\n" + a.text + "\n\nsqlpost status shows every alert in force.\n";
    auto mail = transport::compose_notice(c.site_address, to, subject, body);
    auto sent = mail.ok() ? c.smtp->send(to, mail.value()) : Result<>(mail.error());
    if (!sent.ok()) {
      warnings.push_back("alert mail to " + to + ": " + sent.error().message);
      told = false;
    }
  }
  if (!c.hook.empty()) {
    const int status = platform::run_shell_command(c.hook, {{"SQLPOST_ALERT_STATE", state},
                                                            {"SQLPOST_ALERT_KIND", a.kind},
                                                            {"SQLPOST_ALERT_PARTNER", a.partner},
                                                            {"SQLPOST_ALERT_TEXT", a.text},
                                                            {"SQLPOST_SITE", c.site}});
    if (status != 0) {
      warnings.push_back("alert.hook exited with status " + std::to_string(status) + " for " +
                         what);
      told = false;
    }
  }
  return told;
}

}  // namespace

Result<NotifySummary> notify_alert_changes(Database& db, const std::vector<Alert>& alerts) {
  NotifySummary summary;
  SQLPOST_TRY_ASSIGN(Channels channels, open_channels(db));
  if (channels.mailto.empty() && channels.hook.empty()) {
    return summary;
  }
  SQLPOST_TRY_ASSIGN(const AlertsByKey notified, load_notified(db));
  const AlertsByKey current = by_key(alerts);
  bool all_told = true;
  for (const auto& [key, a] : current) {
    if (notified.count(key) == 0) {
      all_told = tell(channels, a, "raised", summary.warnings) && all_told;
      ++summary.raised;
    }
  }
  for (const auto& [key, a] : notified) {
    if (current.count(key) == 0) {
      all_told = tell(channels, a, "cleared", summary.warnings) && all_told;
      ++summary.cleared;
    }
  }
  if (all_told && (summary.raised > 0 || summary.cleared > 0)) {
    SQLPOST_TRY(store_notified(db, current));
  }
  return summary;
}

}  // namespace sqlpost
