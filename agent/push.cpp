#include "agent/push.h"

#include <utility>

#include "agent/log.h"
#include "agent/mail_settings.h"
#include "agent/params.h"
#include "schema/metadata.h"

namespace sqlpost {
namespace {

constexpr std::chrono::seconds kReadLockWait{1};

// The IMAP mailbox of the site's mail settings, when it reads one.
Result<std::optional<transport::ImapConfig>> imap_settings(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto link, get_config(db, "link"));
  SQLPOST_TRY_ASSIGN(const auto receive, get_config(db, "receive"));
  if (link != "smtp" || receive != "imap") {
    return std::optional<transport::ImapConfig>();
  }
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  SQLPOST_TRY_ASSIGN(auto config, load_mail_settings(db, site));
  return std::optional<transport::ImapConfig>(
      transport::ImapConfig{std::move(config.inbox_server), std::move(config.imap_mailbox)});
}

Result<bool> push_enabled(Database& db) {
  SQLPOST_TRY_ASSIGN(const auto push, get_config(db, "push"));
  return push.value_or("yes") != "no";
}

}  // namespace

Result<std::unique_ptr<PushWakeup>> PushWakeup::open(const std::string& db_path,
                                                     const RunOptions& options,
                                                     const Waiter& waiter) {
  SQLPOST_TRY_ASSIGN(Database db, Database::open(db_path, Database::Mode::kReadOnly));
  db.set_lock_wait(kReadLockWait);
  SQLPOST_TRY_ASSIGN(const bool enabled, push_enabled(db));
  if (!enabled) {
    log_info("push=no: passes start only every interval");
    return std::unique_ptr<PushWakeup>();
  }
  SQLPOST_TRY_ASSIGN(const auto link, get_config(db, "link"));
  SQLPOST_TRY_ASSIGN(const auto receive, get_config(db, "receive"));
  const bool imap = link == "smtp" && receive == "imap";
  const bool watch_mail = imap && !options.send_only;
  const bool watch_commits = !options.receive_only;
  log_info(std::string("push: a pass starts at once ") +
           (watch_commits ? "when the database commits" : "") +
           (watch_commits && watch_mail ? " and " : "") +
           (watch_mail ? "when mail arrives (IMAP IDLE)" : "") +
           (!imap && !options.send_only ? "; mail is read every interval (IDLE needs receive=imap)"
                                        : ""));
  return std::make_unique<PushWakeup>(std::move(db), waiter, watch_commits, watch_mail);
}

PushWakeup::PushWakeup(Database db, const Waiter& waiter, bool watch_commits, bool watch_mail)
    : db_(std::move(db)), waiter_(waiter), watch_commits_(watch_commits), watch_mail_(watch_mail) {}

void PushWakeup::pass_starting() {
  if (!watch_commits_) {
    return;
  }
  auto version = db_.query_int("PRAGMA data_version");
  auto mark = db_.query_int("SELECT max(seq) FROM sqlpost_log");
  if (version.ok() && mark.ok()) {
    data_version_ = *version;
    log_mark_ = *mark;
  }
}

// An application committed changes since the last pass began.
bool PushWakeup::committed() {
  auto version = db_.query_int("PRAGMA data_version");
  if (!version.ok() || *version == data_version_) {
    return false;
  }
  auto mark = db_.query_int("SELECT max(seq) FROM sqlpost_log");
  if (!mark.ok()) {
    log_debug("push: reading the change log: " + mark.error().message);
    return false;  // data_version_ stays: looked at again next slice
  }
  data_version_ = *version;
  return *mark != log_mark_;
}

void PushWakeup::open_idle() {
  retry_at_ = waiter_.now() + kIdleRetry;
  auto config = imap_settings(db_);
  if (config.ok() && !*config) {
    watch_mail_ = false;
    return;
  }
  auto idle = config.ok() ? transport::ImapIdle::open(**config)
                          : Result<std::unique_ptr<transport::ImapIdle>>(config.error());
  if (idle.ok()) {
    idle_ = std::move(idle).value();
    log_debug("push: waiting for new mail with IMAP IDLE");
    last_problem_.clear();
    catch_up_ = lost_idle_;  // mail may have arrived while there was no IDLE
    return;
  }
  if (idle.error().code == Errc::kUnsupported) {
    log_warn(idle.error().message + "; mail is read every interval");
    watch_mail_ = false;
    return;
  }
  if (idle.error().message != last_problem_) {
    log_warn(idle.error().message + "; mail is read every interval until IDLE works again");
    last_problem_ = idle.error().message;
  }
}

bool PushWakeup::wait(std::chrono::milliseconds slice) {
  if (watch_commits_ && committed()) {
    log_debug("push: the database changed; starting a pass");
    return true;
  }
  if (watch_mail_ && !idle_ && waiter_.now() >= retry_at_) {
    open_idle();
  }
  if (std::exchange(catch_up_, false)) {
    log_debug("push: IMAP IDLE is back; starting a pass for mail that came meanwhile");
    return true;
  }
  if (!idle_) {
    (void)waiter_.wait_until(waiter_.now() + slice);
    return false;
  }
  auto arrived = idle_->wait(slice);
  if (!arrived.ok()) {
    log_warn(arrived.error().message + "; IDLE is opened again in " +
             std::to_string(kIdleRetry.count()) + " s");
    idle_.reset();
    lost_idle_ = true;
    return false;
  }
  if (*arrived) {
    log_debug("push: new mail (IMAP IDLE); starting a pass");
  }
  return *arrived;
}

}  // namespace sqlpost
