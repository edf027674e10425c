#include "agent/run.h"

#include <iostream>
#include <optional>
#include <sstream>

#include "agent/check.h"
#include "agent/exit_codes.h"
#include "agent/lock.h"
#include "agent/log.h"
#include "agent/mail_settings.h"
#include "agent/params.h"
#include "agent/version.h"
#include "platform/console.h"
#include "schema/migrations.h"
#include "transport/curl_smtp.h"
#include "transport/file_link.h"
#include "transport/mail_links.h"

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

// "control parameters missing: smtp.host, pop3.password; set them with: sqlpost
// config DB smtp.host=...; sqlpost config DB --secret pop3.password"
Error missing_mail_error(const std::string& db_path, const std::vector<std::string>& missing,
                         bool asked_on_terminal = true) {
  std::string keys;
  std::string plain;
  std::string secrets;
  for (const auto& key : missing) {
    keys += (keys.empty() ? "" : ", ") + key;
    if (key.ends_with(".password")) {
      secrets.append("; sqlpost config ").append(db_path).append(" --secret ").append(key);
    } else {
      plain += " " + key + "=...";
    }
  }
  const std::string commands =
      plain.empty() ? secrets.substr(2) : "sqlpost config " + db_path + plain + secrets;
  return make_error(
      Errc::kConfig,
      "control parameters missing: " + keys + "; set them with: " + commands +
          (asked_on_terminal ? " (or run sqlpost run on a terminal to be asked)" : ""));
}

Result<std::unique_ptr<transport::Link>> make_mail_link(Database& db, const std::string& db_path,
                                                        const LocalSite& site) {
  SQLPOST_TRY_ASSIGN(const auto missing, missing_mail_parameters(db));
  if (!missing.empty()) {
    return missing_mail_error(db_path, missing);
  }
  SQLPOST_TRY_ASSIGN(auto config, load_mail_settings(db, site));
  SQLPOST_TRY_ASSIGN(const bool unverified, tls_verification_off(db));
  if (unverified) {
    log_warn(
        "tls.verify=no: the mail servers' certificates are not checked; anyone on the path can "
        "read and change the mail (set tls.ca_file instead)");
  }
  auto link = transport::MailLink::open(std::move(config));
  if (!link.ok()) {
    return make_error(Errc::kConfig, "smtp link: " + link.error().message);
  }
  return std::unique_ptr<transport::Link>(std::move(link).value());
}

Result<std::unique_ptr<transport::Link>> make_ftp_link(Database& db, const std::string& db_path,
                                                       const LocalSite& site) {
  SQLPOST_TRY_ASSIGN(const auto missing, missing_ftp_parameters(db));
  if (!missing.empty()) {
    return missing_mail_error(db_path, missing, false);
  }
  SQLPOST_TRY_ASSIGN(auto config, load_ftp_settings(db, site));
  SQLPOST_TRY_ASSIGN(const bool unverified, tls_verification_off(db));
  if (unverified && config.server.security != transport::MailSecurity::kNone) {
    log_warn(
        "tls.verify=no: the FTP server's certificate is not checked; anyone on the path "
        "can read and change the mail (set tls.ca_file instead)");
  }
  if (config.server.security == transport::MailSecurity::kNone) {
    log_warn("ftp.security=none: the FTP password and the (sealed) mail travel in clear text");
  }
  auto link = transport::FtpLink::open(std::move(config));
  if (!link.ok()) {
    return make_error(Errc::kConfig, "ftp link: " + link.error().message);
  }
  return std::unique_ptr<transport::Link>(std::move(link).value());
}

bool interactive() { return platform::stdin_is_terminal() && platform::stderr_is_terminal(); }

// What the user typed at a first run whose connection test failed is kept — not as
// settings, since they did not work, but in sqlpost_meta — and offered again as the
// answer to Enter at the next first run. Secrets (passwords) are never kept.
constexpr std::string_view kDraftPrefix = "first_run_draft.";

Result<std::optional<std::string>> draft_of(Database& db, const std::string& key) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT value FROM sqlpost_meta WHERE key = ?"));
  st.bind(1, std::string(kDraftPrefix) + key);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{st.column_text(0)};
}

Result<> keep_drafts(Database& db, const std::vector<std::pair<std::string, std::string>>& typed) {
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  for (const auto& [key, value] : typed) {
    const ParamSpec* spec = find_parameter(key);
    if (spec != nullptr && spec->secret) {
      continue;
    }
    SQLPOST_TRY_ASSIGN(Statement st,
                       db.prepare("INSERT OR REPLACE INTO sqlpost_meta(key, value) VALUES (?, ?)"));
    st.bind(1, std::string(kDraftPrefix) + key).bind(2, value);
    SQLPOST_TRY(st.run());
  }
  return tx.commit();
}

Result<> clear_drafts(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("DELETE FROM sqlpost_meta WHERE substr(key, 1, ?) "
                                              "= ?"));
  st.bind(1, static_cast<std::int64_t>(kDraftPrefix.size())).bind(2, std::string(kDraftPrefix));
  return st.run();
}

Result<std::string> ask(Database& db, const std::string& key) {
  const ParamSpec* spec = find_parameter(key);
  const std::string prompt = key + (spec != nullptr ? " (" + std::string(spec->help) + ")" : "");
  if (spec != nullptr && spec->secret) {
    return read_secret(prompt + ": ");
  }
  SQLPOST_TRY_ASSIGN(const auto draft, draft_of(db, key));
  std::cerr << prompt << (draft ? " [" + *draft + "]" : std::string()) << ": " << std::flush;
  std::string line;
  if (!std::getline(std::cin, line)) {
    return make_error(Errc::kConfig, "no value given for " + key);
  }
  if (line.empty() && draft) {
    line = *draft;  // Enter keeps what was typed last time
  }
  if (line.empty()) {
    return make_error(Errc::kConfig, "no value given for " + key);
  }
  SQLPOST_TRY(validate_parameter(key, line));
  return line;
}

// What testing the settings as `sqlpost check` does showed.
struct SettingsTest {
  bool ok = false;
  bool untrusted = false;  // a step failed on the server's certificate
  std::string steps;       // the steps, as shown
};

Result<SettingsTest> test_mail_settings(Database& db, const LocalSite& site) {
  SQLPOST_TRY_ASSIGN(const auto config, load_mail_settings(db, site));
  SQLPOST_TRY_ASSIGN(const auto domains, partner_domains(db));
  std::cerr << "sqlpost: testing the connection...\n";
  std::ostringstream steps;
  SettingsTest test;
  SQLPOST_TRY_ASSIGN(test.ok, check_mail_settings(config, domains, steps));
  test.steps = steps.str();
  std::cerr << test.steps;
  test.untrusted = test.steps.find("certificate is not trusted") != std::string::npos;
  return test;
}

// The protocols (smtp, pop3, imap) whose failing step points at the security setting:
// no STARTTLS offered, a TLS handshake that fails (implicit TLS on a STARTTLS port), no
// greeting (STARTTLS on an implicit-TLS port), or a server that offers no login in
// clear text.
std::vector<std::string> security_suspects(const std::string& steps) {
  std::vector<std::string> suspects;
  for (const char* protocol : {"smtp", "pop3", "imap"}) {
    const std::string fail = std::string("FAIL ") + protocol + ": ";
    for (std::size_t at = steps.find(fail); at != std::string::npos;
         at = steps.find(fail, at + 1)) {
      const std::string line = steps.substr(at, steps.find('\n', at) - at);
      if (line.find(": STARTTLS") != std::string::npos ||
          line.find("handshake failed") != std::string::npos ||
          line.find("sent no greeting") != std::string::npos ||
          line.find("did not offer a login") != std::string::npos) {
        suspects.emplace_back(protocol);
        break;
      }
    }
  }
  return suspects;
}

// First run on a terminal: asks for what is missing, tests it, stores it only if
// every connection step passed. When a server's certificate is not trusted, it asks
// for the CA file (tls.ca_file) and tests again. What was typed is kept for the next
// first run when the test fails.
Result<> ask_for_mail_settings(Database& db, const LocalSite& site) {
  SQLPOST_TRY_ASSIGN(const auto missing, missing_mail_parameters(db));
  if (missing.empty()) {
    return success();
  }
  std::cerr << "sqlpost: first run: the mail settings are incomplete; please enter them.\n";
  std::vector<std::pair<std::string, std::string>> typed;
  auto stored = [&]() -> Result<bool> {
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    const auto take = [&](const std::string& key) -> Result<> {
      SQLPOST_TRY_ASSIGN(const std::string value, ask(db, key));
      typed.emplace_back(key, value);
      return set_config(db, key, value);
    };
    for (const auto& key : missing) {
      SQLPOST_TRY(take(key));
    }
    SQLPOST_TRY_ASSIGN(SettingsTest test, test_mail_settings(db, site));
    if (const auto suspects = security_suspects(test.steps); !test.ok && !suspects.empty()) {
      std::cerr << "sqlpost: the connection security does not match the server's port "
                   "(starttls: ports 587, 110, 143; tls: ports 465, 995, 993).\n";
      for (const auto& protocol : suspects) {
        SQLPOST_TRY(take(protocol + ".security"));
      }
      SQLPOST_TRY_ASSIGN(test, test_mail_settings(db, site));
    }
    if (!test.ok && test.untrusted) {
      std::cerr << "sqlpost: the server's certificate is not trusted by this system; give the "
                   "certificate of the authority that signed it (a PEM file).\n";
      SQLPOST_TRY(take("tls.ca_file"));
      SQLPOST_TRY_ASSIGN(test, test_mail_settings(db, site));
    }
    if (!test.ok) {
      return false;  // `tx` rolls back: nothing that failed is stored as a setting
    }
    SQLPOST_TRY(clear_drafts(db));
    SQLPOST_TRY(tx.commit());
    return true;
  }();
  if (!stored.ok() || !stored.value()) {
    if (!typed.empty()) {
      SQLPOST_TRY(keep_drafts(db, typed));
    }
    if (!stored.ok()) {
      return stored.take_error();
    }
    return make_error(Errc::kConfig,
                      "the settings were not stored because a connection step failed (see "
                      "above); run again (what you typed is offered again, but passwords), or "
                      "set them with sqlpost config");
  }
  return success();
}

// smtp.etrn: before receiving, the SMTP server is asked to deliver the mail it
// queued for the domain. A refusal is a problem of the run (the user asked for it).
Result<> request_queued_mail(Database& db, const LocalSite& site, RunReport& report) {
  SQLPOST_TRY_ASSIGN(const auto domain, get_config(db, "smtp.etrn"));
  if (!domain) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto settings, load_mail_settings(db, site));
  if (settings.direct) {
    report.problems.push_back("smtp.etrn=" + *domain +
                              " needs an SMTP relay that queues mail for the domain, and "
                              "smtp.mode=direct has none: set smtp.mode=relay and smtp.host");
    report.worst = Errc::kConfig;
    return success();
  }
  SQLPOST_TRY_ASSIGN(auto smtp, transport::SmtpLink::open(settings.smtp));
  if (settings.pop_before_smtp) {
    if (auto login = transport::mailbox_login(settings); !login.ok()) {
      report.problems.push_back("ETRN " + *domain +
                                " not asked: POP-before-SMTP (smtp.pop_before_smtp=yes): the "
                                "mailbox login failed: " +
                                login.error().message);
      report.worst = login.error().code;
      return success();
    }
  }
  auto reply = smtp->etrn(*domain);
  if (reply.ok()) {
    report.notes.push_back("ETRN " + *domain + ": " + reply.value());
    return success();
  }
  report.problems.push_back(reply.error().message + " (smtp.etrn=" + *domain +
                            ": the server must queue mail for that domain and allow ETRN, "
                            "e.g. Postfix fast_flush_domains)");
  report.worst = reply.error().code;
  return success();
}

// One step of a run waits this long for the write lock an application holds.
Result<> set_run_lock_wait(Database& db) {
  constexpr std::int64_t kDefaultLockWaitSeconds = 10;
  SQLPOST_TRY_ASSIGN(const std::int64_t seconds,
                     int_parameter(db, "lock_wait", kDefaultLockWaitSeconds));
  db.set_lock_wait(std::chrono::seconds(seconds));
  return success();
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
  if (*link == "smtp") {
    return make_mail_link(db, db_path, site);
  }
  if (*link == "ftp") {
    return make_ftp_link(db, db_path, site);
  }
  return make_error(Errc::kConfig, "link '" + *link + "' is not available in this build");
}

Result<EngineOptions> engine_options(Database& db) {
  EngineOptions o;
  o.version = kVersion;
  SQLPOST_TRY_ASSIGN(const auto max_bytes, int_parameter(db, "max_message_bytes", 1'000'000));
  o.max_message_bytes = static_cast<std::size_t>(max_bytes);
  SQLPOST_TRY_ASSIGN(o.resend_timeout, int_parameter(db, "resend_timeout", o.resend_timeout));
  SQLPOST_TRY_ASSIGN(o.gap_patience, int_parameter(db, "gap_patience", o.gap_patience));
  SQLPOST_TRY_ASSIGN(o.resend_interval, int_parameter(db, "resend_interval", o.resend_interval));
  SQLPOST_TRY_ASSIGN(o.log_retention, int_parameter(db, "log_retention", o.log_retention));
  SQLPOST_TRY_ASSIGN(
      const auto max_changes,
      int_parameter(db, "limits.max_changes", static_cast<std::int64_t>(kDefaultMaxChanges)));
  o.decode_limits.max_changes = static_cast<std::size_t>(max_changes);
  SQLPOST_TRY_ASSIGN(const auto max_value,
                     int_parameter(db, "limits.max_value_bytes",
                                   static_cast<std::int64_t>(kDefaultMaxValueBytes)));
  o.decode_limits.max_value_bytes = static_cast<std::size_t>(max_value);
  SQLPOST_TRY_ASSIGN(const auto max_decode,
                     int_parameter(db, "limits.max_decode_bytes",
                                   static_cast<std::int64_t>(kDefaultMaxDecodeBytes)));
  o.decode_limits.max_decode_bytes = static_cast<std::size_t>(max_decode);
  return o;
}

Result<RunReport> run_agent_once(const std::string& db_path, const RunOptions& options) {
  std::optional<AgentLock> lock;
  if (!options.lock_held) {
    auto acquired = AgentLock::acquire(db_path);
    if (!acquired.ok()) {
      return acquired.take_error();
    }
    lock.emplace(std::move(acquired).value());
  }
  SQLPOST_TRY_ASSIGN(Database db, open_site(db_path));
  SQLPOST_TRY(set_run_lock_wait(db));
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  set_log_site(site.name);
  SQLPOST_TRY_ASSIGN(const auto link_kind, get_config(db, "link"));
  if (link_kind == "smtp" && interactive()) {
    SQLPOST_TRY(ask_for_mail_settings(db, site));
  }
  SQLPOST_TRY_ASSIGN(auto link, make_link(db, db_path, site));
  SQLPOST_TRY_ASSIGN(EngineOptions engine_opts, engine_options(db));
  engine_opts.ignore_send_schedule = options.send_now;
  Engine engine(db, *link, engine_opts);
  RunReport etrn_report;
  if (link_kind == "smtp" && !options.send_only) {
    SQLPOST_TRY(request_queued_mail(db, site, etrn_report));
  }
  SQLPOST_TRY_ASSIGN(RunReport report,
                     engine.run_once(RunPhases{!options.send_only, !options.receive_only}));
  report.notes.insert(report.notes.begin(), etrn_report.notes.begin(), etrn_report.notes.end());
  report.problems.insert(report.problems.begin(), etrn_report.problems.begin(),
                         etrn_report.problems.end());
  if (!etrn_report.problems.empty() && report.problems.size() == etrn_report.problems.size()) {
    report.worst = etrn_report.worst;
  }
  if (auto finished = link->finish(); !finished.ok()) {
    report.problems.push_back("ending the mailbox session: " + finished.error().message +
                              " (received mail stays in the mailbox; it is recognised next run)");
    report.worst = finished.error().code;
  }
  return report;
}

int exit_code_for_report(const RunReport& report) {
  if (report.problems.empty()) {
    return kExitOk;
  }
  return exit_code_for(report.worst);
}

}  // namespace sqlpost
