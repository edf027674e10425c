// sqlpost/agent/push.h — push delivery for `sqlpost run --every` (parameter push=yes).
//
// Contract: PushWakeup (a Wakeup for run_every) starts the next pass early when
//  * mail arrives: with link=smtp and receive=imap (not --send-only) it keeps an
//    IMAP IDLE connection (transport/imap_idle.h) to the site's mailbox and waits on
//    its socket; a server without IDLE, or POP3, leaves mail to the interval. A
//    broken IDLE connection is logged and opened again after kIdleRetry (the passes
//    go on meanwhile), and once it is back a pass starts for mail that came meanwhile;
//  * an application commits (not --receive-only): each wait slice reads the
//    database's PRAGMA data_version on a connection of its own (one cheap read; it
//    changes when any other connection commits) and, when it changed, the change
//    log's highest sequence: a pass starts when that differs from the one before the
//    last pass began, so the agent's own commits start no pass of their own except
//    one after a pass that applied (and so logged) changes.
// Without IDLE a wait slice sleeps through the Waiter, so a stop request ends it.
// open() gives nullptr when push=no. Errors opening the database are returned; an
// IDLE connection that fails is only logged.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/run.h"
#include "agent/schedule.h"
#include "schema/db.h"
#include "transport/imap_idle.h"

namespace sqlpost {

class PushWakeup final : public Wakeup {
 public:
  static constexpr std::chrono::seconds kIdleRetry{60};

  static Result<std::unique_ptr<PushWakeup>> open(const std::string& db_path,
                                                  const RunOptions& options, const Waiter& waiter);

  PushWakeup(Database db, const Waiter& waiter, bool watch_commits, bool watch_mail);  // open()
  void pass_starting() override;
  bool wait(std::chrono::milliseconds slice) override;

 private:
  bool committed();
  void open_idle();

  Database db_;
  const Waiter& waiter_;
  bool watch_commits_;
  bool watch_mail_;
  std::int64_t data_version_ = 0;
  std::int64_t log_mark_ = 0;
  std::unique_ptr<transport::ImapIdle> idle_;
  Waiter::TimePoint retry_at_{};
  std::string last_problem_;
  bool lost_idle_ = false;  // an IDLE connection failed since the start
  bool catch_up_ = false;   // IDLE came back: one pass for what arrived meanwhile
};

}  // namespace sqlpost
