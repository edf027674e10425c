#include "agent/ops_commands.h"

#include <CLI/CLI.hpp>

#include <ctime>
#include <iostream>
#include <memory>

#include "agent/history.h"
#include "agent/report.h"
#include "schema/migrations.h"

namespace sqlpost {
namespace {

using Action = std::function<Result<>()>;

void print(const nlohmann::json& doc, bool json, const std::string& text) {
  std::cout << (json ? doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"
                     : text);
}

struct LogOptions {
  std::string db;
  std::string partner;
  std::string since;
  std::int64_t limit = 200;
  bool runs = false;
  bool json = false;
};

Result<> show_log(const LogOptions& o) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(o.db));
  LogQuery query{o.partner, 0, o.limit};
  if (!o.since.empty()) {
    SQLPOST_TRY_ASSIGN(query.since, parse_since(o.since, std::time(nullptr)));
  }
  SQLPOST_TRY_ASSIGN(const nlohmann::json log, collect_log(db, query));
  print(log, o.json, render_log_text(log, o.runs));
  return success();
}

void add_log(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("log", "Show the message log (or the runs) of this site");
  auto o = std::make_shared<LogOptions>();
  cmd->add_option("DB", o->db, "SQLite database file")->required();
  cmd->add_option("--partner", o->partner, "only messages to or from this partner");
  cmd->add_option("--since", o->since, "only since TIME: 2h, 3d ago, or a UTC date 2026-11-25");
  cmd->add_option("--limit", o->limit, "the newest N of each (default 200)");
  cmd->add_flag("--runs", o->runs, "list the agent's runs instead of the messages");
  cmd->add_flag("--json", o->json, "messages and runs as JSON");
  cmd->callback([&action, o] { action = [o] { return show_log(*o); }; });
}

void add_stats(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("stats", "Show traffic per partner per day");
  auto db = std::make_shared<std::string>();
  auto days = std::make_shared<std::int64_t>(30);
  auto json = std::make_shared<bool>(false);
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("--days", *days, "the last N days (default 30)")->type_name("N");
  cmd->add_flag("--json", *json, "as JSON");
  cmd->callback([&action, db, days, json] {
    action = [db, days, json]() -> Result<> {
      SQLPOST_TRY_ASSIGN(Database d, open_site(*db));
      SQLPOST_TRY_ASSIGN(const nlohmann::json stats, collect_stats(d, *days));
      print(stats, *json, render_stats_text(stats));
      return success();
    };
  });
}

void add_queue(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("queue", "List the outbox, the inbox and set-aside mail");
  auto db = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_flag("--json", *json, "as JSON");
  cmd->callback([&action, db, json] {
    action = [db, json]() -> Result<> {
      SQLPOST_TRY_ASSIGN(Database d, open_site(*db));
      SQLPOST_TRY_ASSIGN(const nlohmann::json queue, collect_queue(d));
      print(queue, *json, render_queue_text(queue));
      return success();
    };
  });
}

struct ReportOptions {
  std::string db;
  std::string html;
  std::int64_t days = kDefaultReportDays;
};

void add_report(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "report", "Write one HTML page: every site's state, lag and backlog, with charts");
  auto o = std::make_shared<ReportOptions>();
  cmd->add_option("DB", o->db, "SQLite database file")->required();
  cmd->add_option("--html", o->html, "write the page to FILE (replaced atomically)")
      ->type_name("FILE")
      ->required();
  cmd->add_option("--days", o->days, "charts of the last N UTC days (default 14)")->type_name("N");
  cmd->callback([&action, o] {
    action = [o]() -> Result<> {
      SQLPOST_TRY_ASSIGN(Database db, open_site(o->db));
      return write_report(db, o->html, std::time(nullptr), o->days);
    };
  });
}

}  // namespace

void add_ops_commands(CLI::App& app, Action& action) {
  add_log(app, action);
  add_stats(app, action);
  add_queue(app, action);
  add_report(app, action);
}

}  // namespace sqlpost
