// sqlpost/agent/notify.h — telling an administrator when an alert is raised and when
// it clears: a mail through the site's own SMTP settings (alert.mailto) and an
// optional hook command (alert.hook).
//
// Contract: notify_alert_changes() compares the alerts in force with the ones
// already notified (kept in sqlpost_meta, key 'alerts_notified': kind, partner and
// text of each). For every alert raised since, and every one cleared since, it mails
// each address of alert.mailto (comma-separated) one plain-text notice, and runs
// alert.hook through the shell with SQLPOST_ALERT_STATE (raised or cleared),
// SQLPOST_ALERT_KIND, SQLPOST_ALERT_PARTNER, SQLPOST_ALERT_TEXT and SQLPOST_SITE in
// its environment. The notified set is stored only once every notice of the change
// went out, so a failure (server down, hook exit status not 0) is tried again at the
// next pass: each change is told at least once, and again only after a failure.
// With neither setting nothing is sent and nothing is stored. alert.mailto needs the
// SMTP link (link=smtp); with another link its notices are skipped with a warning.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/alerts.h"
#include "schema/db.h"

namespace sqlpost {

struct NotifySummary {
  int raised = 0;
  int cleared = 0;
  std::vector<std::string> warnings;  // what could not be told (tried again next pass)
};

Result<NotifySummary> notify_alert_changes(Database& db, const std::vector<Alert>& alerts);

}  // namespace sqlpost
