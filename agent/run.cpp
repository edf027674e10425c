#include "agent/run.h"

#include "agent/exit_codes.h"
#include "agent/lock.h"
#include "agent/params.h"
#include "schema/migrations.h"
#include "transport/file_link.h"

namespace sqlpost {
namespace {

Error missing_parameters(const std::string& db_path, const std::string& what,
                         const std::string& example) {
  return make_error(Errc::kConfig, "control parameters missing: " + what +
                                       "; set them with: sqlpost config " + db_path + " " +
                                       example);
}

Result<std::unique_ptr<transport::Link>> make_file_link(Database& db, const std::string& db_path,
                                                        const LocalSite& site) {
  SQLPOST_TRY_ASSIGN(const auto dir, get_config(db, "file.dir"));
  if (!dir) {
    return missing_parameters(db_path, "file.dir", "file.dir=/path/to/shared/folder");
  }
  auto link = transport::FileLink::open(*dir, site.address);
  if (!link.ok()) {
    return make_error(Errc::kConfig, "file link: " + link.error().message);
  }
  return std::unique_ptr<transport::Link>(std::move(link).value());
}

}  // namespace

Result<std::unique_ptr<transport::Link>> make_link(Database& db, const std::string& db_path,
                                                   const LocalSite& site) {
  SQLPOST_TRY_ASSIGN(const auto link, get_config(db, "link"));
  if (!link) {
    return missing_parameters(db_path, "link", "link=file file.dir=/path/to/shared/folder");
  }
  if (*link == "file") {
    return make_file_link(db, db_path, site);
  }
  return make_error(Errc::kConfig, "link '" + *link + "' is not available in this build");
}

Result<EngineOptions> engine_options(Database& db) {
  EngineOptions o;
  SQLPOST_TRY_ASSIGN(const auto max_bytes, int_parameter(db, "max_message_bytes", 1'000'000));
  o.max_message_bytes = static_cast<std::size_t>(max_bytes);
  SQLPOST_TRY_ASSIGN(o.resend_timeout, int_parameter(db, "resend_timeout", o.resend_timeout));
  SQLPOST_TRY_ASSIGN(o.gap_patience, int_parameter(db, "gap_patience", o.gap_patience));
  SQLPOST_TRY_ASSIGN(o.resend_interval, int_parameter(db, "resend_interval", o.resend_interval));
  SQLPOST_TRY_ASSIGN(o.log_retention, int_parameter(db, "log_retention", o.log_retention));
  return o;
}

Result<RunReport> run_agent_once(const std::string& db_path, const RunOptions& options) {
  SQLPOST_TRY_ASSIGN(const AgentLock lock, AgentLock::acquire(db_path));
  SQLPOST_TRY_ASSIGN(Database db, open_site(db_path));
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  SQLPOST_TRY_ASSIGN(auto link, make_link(db, db_path, site));
  SQLPOST_TRY_ASSIGN(const EngineOptions engine_opts, engine_options(db));
  Engine engine(db, *link, engine_opts);
  RunReport report;
  if (!options.send_only) {
    auto received = engine.receive(report);  // a transport failure still lets us send
    if (!received.ok() && received.error().code == Errc::kDatabase) {
      return received.take_error();
    }
    SQLPOST_TRY(engine.apply(report));
  }
  if (!options.receive_only) {
    SQLPOST_TRY(engine.prepare(report));
    SQLPOST_TRY(engine.send(report));
  }
  return report;
}

int exit_code_for_report(const RunReport& report) {
  if (report.problems.empty()) {
    return kExitOk;
  }
  return exit_code_for(Error{report.worst, {}});
}

}  // namespace sqlpost
