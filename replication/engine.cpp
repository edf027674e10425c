#include "replication/engine.h"

#include <array>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "platform/process.h"
#include "replication/applier.h"
#include "replication/bounce.h"
#include "replication/changelog.h"
#include "replication/keys.h"
#include "replication/preparer.h"
#include "replication/receiver.h"
#include "replication/retention.h"
#include "replication/routing.h"
#include "replication/run_context.h"
#include "replication/send_schedule.h"
#include "replication/sender.h"
#include "replication/spool.h"

namespace sqlpost {
namespace {

std::string local_time_text(std::int64_t at) {
  const std::tm tm = platform::local_time(static_cast<std::time_t>(at));
  std::array<char, 48> buf{};
  (void)std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M %Z", &tm);
  return buf.data();
}

// Whether `partner` gets a message prepared in this pass (see prepare() in engine.h);
// one that waits with changes pending is added to `waiting`.
Result<bool> due_now(RunContext& run, const Partner& partner, std::vector<std::string>& waiting) {
  if (partner.send_schedule.empty() || run.options.ignore_send_schedule) {
    return true;
  }
  auto schedule = parse_send_schedule(partner.send_schedule);
  if (!schedule.ok()) {
    note(run.report, schedule.error(), "site " + partner.name + " (sent as if it had none)");
    return true;
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t pending, first_closed_at_after(run.db, partner.sent_epoch));
  if (send_due(schedule.value(), pending, run.now())) {
    return true;
  }
  SQLPOST_TRY_ASSIGN(const Stream s, run.streams.load(partner.name));
  if (s.restore_request > 0) {
    return true;
  }
  if (pending > 0) {
    waiting.push_back(partner.name + " until " +
                      local_time_text(next_send(schedule.value(), pending, run.now())) + " (" +
                      describe(schedule.value()) + ")");
  }
  return false;
}

// The partners due in this pass; the others are named in a note when changes wait.
Result<std::vector<Partner>> due_partners(RunContext& run) {
  std::vector<Partner> due;
  std::vector<std::string> waiting;
  for (const auto& [name, partner] : run.partners) {
    SQLPOST_TRY_ASSIGN(const bool now, due_now(run, partner, waiting));
    if (now) {
      due.push_back(partner);
    }
  }
  if (!waiting.empty()) {
    std::string text = "send schedule: changes wait for";
    for (std::size_t i = 0; i < waiting.size(); ++i) {
      text += (i > 0 ? "; " : " ") + waiting[i];
    }
    run.report.notes.push_back(text + " (sqlpost run --send-now sends them now)");
  }
  return due;
}

}  // namespace

Engine::Engine(Database& db, transport::Link& link, EngineOptions options)
    : db_(db), link_(link), options_(std::move(options)) {}

Result<> Engine::receive(RunReport& report) {
  RunContext run(db_, link_, options_, report);
  SQLPOST_TRY(run.load());
  auto refs = link_.list();
  if (!refs.ok()) {
    note(report, refs.error(), "listing the mailbox");
    return refs.take_error();
  }
  Receiver receiver(run);
  for (const auto& ref : refs.value()) {
    SQLPOST_TRY(receiver.receive_one(ref));
  }
  return success();
}

namespace {

// The partners with mail in the inbox: only they have a message to apply or a gap
// to watch (apply_next and watch_gap find nothing for the others), so a hub with
// 1,000 partners and a few mails reads the others' stream state not at all.
Result<std::set<std::string>> sites_with_inbox_mail(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement * st, db.cached("SELECT DISTINCT site FROM sqlpost_inbox"));
  SQLPOST_TRY_ASSIGN(const auto sites,
                     st->rows([](const Statement& row) { return row.column_text(0); }));
  return std::set<std::string>(sites.begin(), sites.end());
}

}  // namespace

Result<> Engine::apply(RunReport& report) {
  RunContext run(db_, link_, options_, report);
  SQLPOST_TRY(run.load());
  SQLPOST_TRY_ASSIGN(const std::set<std::string> with_mail, sites_with_inbox_mail(db_));
  Applier applier(run);
  // A stream stopped by an error is tried again on every run (the error is reported
  // again until whoever can fix it has), so fixing the cause is all it takes.
  for (const auto& [name, partner] : run.partners) {
    if (!with_mail.contains(name)) {
      continue;
    }
    for (;;) {
      SQLPOST_TRY_ASSIGN(const bool applied, applier.apply_next(partner));
      if (!applied) {
        break;
      }
    }
    SQLPOST_TRY(applier.watch_gap(partner));
  }
  return success();
}

Result<> Engine::prepare(RunReport& report) {
  RunContext run(db_, link_, options_, report);
  SQLPOST_TRY(run.load());
  {  // key ranges: a block used up since the last run moves on (replication/keys.h)
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db_));
    SQLPOST_TRY(seed_key_ranges(db_));
    SQLPOST_TRY(tx.commit());
  }
  SQLPOST_TRY_ASSIGN(const std::int64_t closed, cut_epoch_if_logged(db_, run.now()));
  SQLPOST_TRY_ASSIGN(const std::vector<Partner> partners, due_partners(run));
  std::map<std::string, std::unique_ptr<SpooledBody>> bodies;
  std::map<std::string, BodyTarget*> targets;
  for (const auto& partner : partners) {
    SQLPOST_TRY_ASSIGN(bodies[partner.name], SpooledBody::create(db_, partner.name));
    targets[partner.name] = bodies[partner.name].get();
  }
  SQLPOST_TRY(route_changes_for_all(db_, partners, closed, targets));
  Preparer preparer(run);
  for (const auto& partner : partners) {
    SpooledBody& body = *bodies[partner.name];
    Payload decided;
    SQLPOST_TRY(append_decided_rows(db_, partner, decided, closed));
    body.append(decided);
    SQLPOST_TRY(preparer.prepare_for(partner, body, closed));
  }
  SQLPOST_TRY(preparer.commit_outbox_batch());
  for (auto& [name, body] : bodies) {
    SQLPOST_TRY(body->discard());
  }
  SQLPOST_TRY_ASSIGN(const PruneSummary pruned,
                     prune_change_log(db_, run.now(), options_.log_retention));
  if (pruned.rows > 0) {
    report.notes.push_back("pruned " + std::to_string(pruned.rows) +
                           " change log row(s) up to epoch " + std::to_string(pruned.epoch));
  }
  return success();
}

Result<> Engine::send(RunReport& report) {
  RunContext run(db_, link_, options_, report);
  SQLPOST_TRY(run.load());
  // Read once: sending a partner's outbox changes no stream's debt of an ack.
  SQLPOST_TRY_ASSIGN(const std::set<std::string> owing_ack, run.streams.sites_owing_ack());
  Sender sender(run);
  for (const auto& [name, partner] : run.partners) {
    SQLPOST_TRY_ASSIGN(const bool reachable, sender.send_outbox(partner));
    if (reachable && owing_ack.contains(name)) {
      SQLPOST_TRY(sender.send_ack_only(partner));
    }
  }
  return sender.write_after_send();
}

Result<> Engine::run_phases(RunReport& report, RunPhases phases) {
  if (phases.receive) {
    auto received = receive(report);  // a link failure is in the report; the run goes on
    if (!received.ok() && is_database_failure(received.error().code)) {
      return received.take_error();
    }
    SQLPOST_TRY(apply(report));
  }
  if (phases.send) {
    SQLPOST_TRY(prepare(report));
    SQLPOST_TRY(send(report));
  }
  return success();
}

Result<RunReport> Engine::run_once(RunPhases phases) {
  RunReport report;
  auto ran = run_phases(report, phases);
  if (!ran.ok()) {
    if (ran.error().code != Errc::kBusy) {
      return ran.take_error();
    }
    note(report, ran.error(),
         "the database write lock stayed taken by another connection; this run stopped "
         "there and the next run goes on (nothing is lost)");
  }
  return report;
}

}  // namespace sqlpost
