#include "agent/commands.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <array>
#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "agent/alerts.h"
#include "agent/check.h"
#include "agent/exit_codes.h"
#include "agent/history.h"
#include "agent/lock.h"
#include "agent/log.h"
#include "agent/mail_settings.h"
#include "agent/manpage.h"
#include "agent/notify.h"
#include "agent/ops_commands.h"
#include "agent/params.h"
#include "agent/private_files.h"
#include "agent/push.h"
#include "agent/run.h"
#include "agent/schedule.h"
#include "agent/site_file.h"
#include "agent/status.h"
#include "agent/version.h"
#include "platform/files.h"
#include "replication/conflicts.h"
#include "replication/extract.h"
#include "replication/keys.h"
#include "replication/origin.h"
#include "replication/outbox.h"
#include "replication/publication_change.h"
#include "replication/rekey.h"
#include "replication/retention.h"
#include "replication/send_schedule.h"
#include "schema/capture.h"
#include "schema/metadata.h"
#include "schema/migrations.h"
#include "transport/key.h"

namespace sqlpost {
namespace {

using Action = std::function<Result<>()>;

// Opens the site and runs `change` in one write transaction.
Result<> with_site_write(const std::string& path,
                         const std::function<Result<>(Database&)>& change) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  SQLPOST_TRY(change(db));
  return tx.commit();
}

Result<std::vector<std::uint8_t>> new_site_key() {
  SQLPOST_TRY_ASSIGN(const transport::Key key, transport::generate_key());
  return std::vector<std::uint8_t>(key.bytes().begin(), key.bytes().end());
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::string current;
  for (const char c : text) {
    if (c == ',') {
      items.push_back(current);
      current.clear();
    } else if (c != ' ') {
      current += c;
    }
  }
  if (!current.empty()) {
    items.push_back(current);
  }
  return items;
}

// ---- secrets at rest (docs/security.md)

// The database holds every pair key and stored password: mode 0600, said when tightened.
Result<> keep_private(const std::string& path) {
  SQLPOST_TRY_ASSIGN(const auto tightened, make_private(path));
  for (const auto& file : tightened) {
    std::cout << "made " << file
              << " private (mode 0600): it holds the site's keys and passwords\n";
  }
  return success();
}

// ---- init

Result<> run_init(const std::string& path, const LocalSite& site) {
  SQLPOST_TRY(validate_site_name(site.name));
  SQLPOST_TRY_ASSIGN(Database db, Database::open(path, Database::Mode::kReadWriteCreate));
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  SQLPOST_TRY_ASSIGN(const bool exists, has_site_tables(db));
  if (exists) {
    return make_error(Errc::kAlreadyExists, path + " is already an sqlpost site; init runs once");
  }
  SQLPOST_TRY(create_site_tables(db));
  SQLPOST_TRY(init_site(db, site));
  SQLPOST_TRY(tx.commit());
  SQLPOST_TRY(keep_private(path));
  std::cout << "initialised " << path << " as consolidated site " << site.name << "\n";
  return success();
}

void add_init(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("init", "Make DB a consolidated site (creates the file)");
  auto db = std::make_shared<std::string>();
  auto site = std::make_shared<LocalSite>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("--site", site->name, "this site's name")->required();
  cmd->add_option("--address", site->address, "this site's e-mail address")->required();
  cmd->callback([&action, db, site] { action = [db, site] { return run_init(*db, *site); }; });
}

// ---- publish / unpublish

struct PublishOptions {
  std::string db;
  Article article;
  std::string columns;
};

// An INTEGER PRIMARY KEY table: rows inserted without a key at two sites collide
// unless key ranges are on (docs/keys.md).
Result<> say_how_keys_are_made(const std::string& path, const std::string& table) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT count(*) FROM pragma_table_info(?) WHERE pk "
                                              "> 0 HAVING count(*) = 1 AND max(pk = 1 AND "
                                              "upper(type) = 'INTEGER') = 1"));
  st.bind(1, table);
  SQLPOST_TRY_ASSIGN(const bool integer_key, st.step());
  if (!integer_key) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const bool ranges, key_ranges_enabled(db));
  SQLPOST_TRY_ASSIGN(const std::int64_t autoincrement,
                     db.query_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                  "name = " +
                                  quote_literal(table) + " AND sql LIKE '%AUTOINCREMENT%'"));
  if (ranges && autoincrement > 0) {
    std::cout << "keys: " << table
              << " takes new keys from this site's key ranges (docs/keys.md)\n";
  } else if (ranges) {
    std::cout << "note: " << table
              << " has an INTEGER PRIMARY KEY without AUTOINCREMENT: key ranges cannot "
                 "work for it; see docs/keys.md to convert it\n";
  } else {
    std::cout << "note: " << table
              << " has an INTEGER PRIMARY KEY: rows inserted without a key at two sites get "
                 "the same key; see docs/keys.md (key ranges: sqlpost config DB keys=ranges)\n";
  }
  return success();
}

void add_publish(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("publish", "Add a table (article) to a publication");
  auto o = std::make_shared<PublishOptions>();
  cmd->add_option("DB", o->db, "SQLite database file")->required();
  cmd->add_option("PUB", o->article.publication, "publication name")->required();
  cmd->add_option("TABLE", o->article.table, "table to publish")->required();
  cmd->add_option("--columns", o->columns, "comma-separated column subset (default: all)");
  cmd->add_option("--where", o->article.where_expr, "SQL expression selecting published rows");
  cmd->add_option("--subscribe-by", o->article.subscribe_by,
                  "SQL expression matched against subscription values");
  cmd->add_option("--conflict", o->article.conflict,
                  "conflict policy: incoming, consolidated or newest:COLUMN");
  cmd->callback([&action, o] {
    action = [o]() -> Result<> {
      o->article.columns = split_list(o->columns);
      SQLPOST_TRY(
          with_site_write(o->db, [&](Database& db) { return publish_live(db, o->article); }));
      std::cout << "published " << o->article.table << " in " << o->article.publication << "\n";
      SQLPOST_TRY(say_how_keys_are_made(o->db, o->article.table));
      return success();
    };
  });
}

void add_unpublish(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("unpublish", "Remove a table from a publication (or all of it)");
  auto db = std::make_shared<std::string>();
  auto pub = std::make_shared<std::string>();
  auto table = std::make_shared<std::string>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("PUB", *pub, "publication name")->required();
  cmd->add_option("TABLE", *table, "table to remove (default: the whole publication)");
  cmd->callback([&action, db, pub, table] {
    action = [db, pub, table] {
      return with_site_write(*db, [&](Database& d) -> Result<> {
        SQLPOST_TRY(announce_article_removed(d, *pub, *table));  // subscribers stop capturing it
        return unpublish(d, *pub, *table);
      });
    };
  });
}

// ---- site add / remove / list

// The partner, and its key slot (docs/keys.md): `slot`, or the next free when < 0.
Result<> add_child_site(Database& db, const Partner& partner, std::int64_t& slot) {
  SQLPOST_TRY(add_partner(db, partner));
  if (slot < 0) {
    SQLPOST_TRY_ASSIGN(slot, next_child_slot(db));
  }
  return set_config(db, child_slot_config(partner.name), std::to_string(slot));
}

void add_site_add(CLI::App& site, Action& action) {
  auto* cmd = site.add_subcommand("add", "Add a remote site (a child of this site)");
  auto db = std::make_shared<std::string>();
  auto partner = std::make_shared<Partner>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("NAME", partner->name, "the remote site's name")->required();
  cmd->add_option("--address", partner->address, "the remote site's e-mail address")->required();
  auto key_slot = std::make_shared<std::int64_t>(-1);
  cmd->add_option("--key-slot", *key_slot, "its key slot (docs/keys.md; default: the next free)")
      ->check(CLI::Range(std::int64_t{0}, kKeySlots - 1));
  cmd->callback([&action, db, partner, key_slot] {
    action = [db, partner, key_slot]() -> Result<> {
      SQLPOST_TRY_ASSIGN(partner->key, new_site_key());
      std::int64_t slot = *key_slot;
      SQLPOST_TRY(
          with_site_write(*db, [&](Database& d) { return add_child_site(d, *partner, slot); }));
      std::cout << "added site " << partner->name << " <" << partner->address << "> (key slot "
                << slot << ")\n";
      return success();
    };
  });
}

void add_site_remove(CLI::App& site, Action& action) {
  auto* cmd = site.add_subcommand("remove", "Remove a remote site and its subscriptions");
  auto db = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("NAME", *name, "the site's name")->required();
  cmd->callback([&action, db, name] {
    action = [db, name] {
      return with_site_write(*db, [&](Database& d) { return remove_partner(d, *name); });
    };
  });
}

Result<> list_sites(const std::string& path) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  for (const auto& p : partners) {
    std::cout << p.name << "\t" << p.address << "\t"
              << (p.relation == Relation::kParent ? "parent" : "child");
    if (!p.send_schedule.empty()) {
      std::cout << "\tsend " << p.send_schedule;
    }
    std::cout << "\n";
  }
  return success();
}

// ---- site schedule

struct ScheduleSettings {
  std::string db;
  std::string site;
  std::string every;
  std::string at;
  bool always = false;
};

Result<SendSchedule> schedule_from(const ScheduleSettings& s) {
  if (static_cast<int>(!s.every.empty()) + static_cast<int>(!s.at.empty()) +
          static_cast<int>(s.always) !=
      1) {
    return make_error(Errc::kInvalidArgument, "give one of --every, --at or --always");
  }
  if (!s.every.empty()) {
    SQLPOST_TRY_ASSIGN(const std::chrono::seconds interval, parse_interval(s.every));
    return every_schedule(interval.count());
  }
  if (!s.at.empty()) {
    return at_schedule(s.at);
  }
  return SendSchedule{};
}

Result<> run_site_schedule(const ScheduleSettings& s) {
  SQLPOST_TRY_ASSIGN(const SendSchedule schedule, schedule_from(s));
  SQLPOST_TRY(with_site_write(
      s.db, [&](Database& d) { return set_send_schedule(d, s.site, to_text(schedule)); }));
  std::cout << "site " << s.site << ": send " << describe(schedule);
  if (schedule.kind != SendSchedule::Kind::kAlways) {
    std::cout << " (local time; acknowledgements and resends still go at every run)";
  }
  std::cout << "\n";
  return success();
}

void add_site_schedule(CLI::App& site, Action& action) {
  auto* cmd = site.add_subcommand(
      "schedule", "Send new data to a site only every INTERVAL or at given local times");
  auto s = std::make_shared<ScheduleSettings>();
  cmd->add_option("DB", s->db, "SQLite database file")->required();
  cmd->add_option("SITE", s->site, "the partner site")->required();
  cmd->add_option("--every", s->every,
                  "send every INTERVAL from local midnight (30m, 6h; 1m to 24h)");
  cmd->add_option("--at", s->at, "send at these local TIMES of day (02:00,14:00)");
  cmd->add_flag("--always", s->always, "send at every run (the default)");
  cmd->callback([&action, s] { action = [s] { return run_site_schedule(*s); }; });
}

// ---- site rekey

void add_site_rekey(CLI::App& site, Action& action) {
  auto* cmd = site.add_subcommand(
      "rekey", "Replace the key shared with SITE through the message stream (docs/operations.md)");
  auto db = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("SITE", *name, "the partner site")->required();
  cmd->callback([&action, db, name] {
    action = [db, name]() -> Result<> {
      SQLPOST_TRY(with_site_write(*db, [&](Database& d) {
        return start_rekey(d, *name, static_cast<std::int64_t>(std::time(nullptr)));
      }));
      std::cout << "site " << *name
                << ": a new key is generated; the next run offers it in a message sealed under "
                   "the current key, and the pair switches once "
                << *name << " acknowledges it (sqlpost status shows the progress)\n";
      return success();
    };
  });
}

// ---- site key (by hand)

struct SiteKeySettings {
  std::string db;
  std::string site;
  std::string export_to;
  std::string import_from;
};

Result<transport::Key> read_key_file(const std::string& path) {
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::open_read(path));
  std::array<char, 256> buffer{};
  SQLPOST_TRY_ASSIGN(const std::size_t n, file.read(buffer));
  std::string text(buffer.data(), n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  auto key = transport::key_from_hex(text);
  if (!key.ok()) {
    return make_error(Errc::kInvalidArgument,
                      path + " does not hold a pair key (64 hexadecimal digits)");
  }
  return key;
}

Result<> export_site_key(const SiteKeySettings& s) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(s.db));
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, s.site));
  if (partner.key.size() != transport::Key::kBytes) {
    return make_error(Errc::kConfig, "site '" + s.site + "' has no valid key");
  }
  transport::Key::Bytes bytes{};
  std::copy(partner.key.begin(), partner.key.end(), bytes.begin());
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::create_new(s.export_to));
  SQLPOST_TRY(file.write_all(transport::key_to_hex(transport::Key(bytes)) + "\n"));
  SQLPOST_TRY(file.close());
  std::cout << "the key shared with " << s.site << " is in " << s.export_to
            << " (owner only); carry it to " << s.site << ", import it there and delete it\n";
  return success();
}

Result<> import_site_key(const SiteKeySettings& s) {
  SQLPOST_TRY_ASSIGN(const transport::Key key, read_key_file(s.import_from));
  std::int64_t dropped = 0;
  SQLPOST_TRY(with_site_write(s.db, [&](Database& d) -> Result<> {
    SQLPOST_TRY_ASSIGN(const auto max_bytes, int_parameter(d, "max_message_bytes", 1'000'000));
    SQLPOST_TRY_ASSIGN(dropped, set_pair_key(d, s.site, key, static_cast<std::size_t>(max_bytes)));
    return success();
  }));
  std::cout << "site " << s.site
            << ": pair key set by hand; the outbox is sealed again under it and sent at the next "
               "run";
  if (dropped > 0) {
    std::cout << "; " << dropped << " received part(s) that do not open under it were dropped ("
              << s.site << " sends them again)";
  }
  std::cout << "\n";
  return success();
}

void add_site_key(CLI::App& site, Action& action) {
  auto* cmd = site.add_subcommand(
      "key", "Copy the key shared with SITE to a FILE, or set it from one (manual re-keying)");
  auto s = std::make_shared<SiteKeySettings>();
  cmd->add_option("DB", s->db, "SQLite database file")->required();
  cmd->add_option("SITE", s->site, "the partner site")->required();
  auto* out = cmd->add_option("--export", s->export_to,
                              "write the pair key to FILE (a new file, owner only)");
  auto* in = cmd->add_option("--import", s->import_from,
                             "set the pair key from FILE (written by --export at the partner)");
  out->excludes(in);
  cmd->callback([&action, s] {
    action = [s]() -> Result<> {
      if (s->export_to.empty() == s->import_from.empty()) {
        return make_error(Errc::kInvalidArgument, "give one of --export FILE or --import FILE");
      }
      return s->export_to.empty() ? import_site_key(*s) : export_site_key(*s);
    };
  });
}

void add_site(CLI::App& app, Action& action) {
  auto* site = app.add_subcommand("site", "Manage partner sites");
  site->require_subcommand(1);
  add_site_add(*site, action);
  add_site_remove(*site, action);
  add_site_schedule(*site, action);
  add_site_rekey(*site, action);
  add_site_key(*site, action);
  auto* list = site->add_subcommand("list", "List partner sites");
  auto db = std::make_shared<std::string>();
  list->add_option("DB", *db, "SQLite database file")->required();
  list->callback([&action, db] { action = [db] { return list_sites(*db); }; });
}

// ---- subscribe / unsubscribe

void add_subscribe(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("subscribe", "Subscribe a remote site to a publication");
  auto db = std::make_shared<std::string>();
  auto sub = std::make_shared<Subscription>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("SITE", sub->site, "the remote site")->required();
  cmd->add_option("PUB", sub->publication, "the publication")->required();
  cmd->add_option("--value", sub->value, "subscribe-by value");
  cmd->callback([&action, db, sub] {
    action = [db, sub] {
      return with_site_write(*db, [&](Database& d) -> Result<> {
        SQLPOST_TRY(subscribe(d, *sub));
        // A live site gets the publication's tables and rows in the stream.
        return announce_subscription(d, sub->site, sub->publication);
      });
    };
  });
}

void add_unsubscribe(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("unsubscribe", "End a site's subscription to a publication");
  auto db = std::make_shared<std::string>();
  auto site = std::make_shared<std::string>();
  auto pub = std::make_shared<std::string>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("SITE", *site, "the remote site")->required();
  cmd->add_option("PUB", *pub, "the publication")->required();
  cmd->callback([&action, db, site, pub] {
    action = [db, site, pub] {
      return with_site_write(*db, [&](Database& d) -> Result<> {
        SQLPOST_TRY(announce_unsubscription(d, *site, *pub));  // it stops capturing them
        return unsubscribe(d, *site, *pub);
      });
    };
  });
}

// ---- status

Result<> show_status(const std::string& path, bool json) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  SQLPOST_TRY_ASSIGN(nlohmann::json status, collect_status(db));
  SQLPOST_TRY_ASSIGN(const bool shared, shared_with_others(path));
  status["database_private"] = !shared;
  std::cout << (json ? status.dump(2) + "\n" : render_status_text(status));
  if (shared && !json) {
    std::cout << "WARNING: " << path
              << " may be read by other users of this machine, and it holds every pair key "
                 "and stored password; make it private with: chmod 600 "
              << path << "\n";
  }
  return success();
}

void add_status(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("status", "Show the site, publications and partners");
  auto db = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_flag("--json", *json, "machine-readable output");
  cmd->callback([&action, db, json] { action = [db, json] { return show_status(*db, *json); }; });
}

// ---- config

// With `all`, every key: those not set with the value in force and "(default)".
Result<> show_config(Database& db, bool all) {
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  std::cout << "address=" << site.address << "\n";
  SQLPOST_TRY_ASSIGN(const auto values, load_config(db));
  const std::map<std::string, std::string> set(values.begin(), values.end());
  for (const auto& [key, value] : values) {
    const ParamSpec* spec = find_parameter(key);
    if (!all || spec == nullptr) {
      std::cout << key << "=" << (spec != nullptr ? masked(*spec, value) : value) << "\n";
    }
  }
  if (!all) {
    return success();
  }
  for (const auto& spec : parameter_specs()) {
    if (spec.key == "address") {
      continue;
    }
    const auto found = set.find(std::string(spec.key));
    if (found != set.end()) {
      std::cout << spec.key << "=" << masked(spec, found->second) << "\n";
    } else if (!spec.default_value.empty()) {
      std::cout << spec.key << "=" << spec.default_value << "  (default)\n";
    } else {
      std::cout << spec.key << "=  (not set)\n";
    }
  }
  return success();
}

Result<> change_config(Database& db, const std::vector<std::string>& assignments) {
  std::vector<std::pair<std::string, std::string>> changes;
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return make_error(Errc::kInvalidArgument, "'" + a + "' is not KEY=VALUE");
    }
    changes.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    if (!changes.back().second.empty()) {
      SQLPOST_TRY(validate_parameter(changes.back().first, changes.back().second));
    } else if (find_parameter(changes.back().first) == nullptr) {
      return make_error(Errc::kInvalidArgument, "unknown parameter '" + changes.back().first + "'");
    }
  }
  for (const auto& [key, value] : changes) {
    if (key == "address") {
      SQLPOST_TRY(set_local_address(db, value));
      continue;
    }
    SQLPOST_TRY(value.empty() ? unset_config(db, key) : set_config(db, key, value));
  }
  return success();
}

Result<> set_secret(Database& db, const std::string& key) {
  const ParamSpec* spec = find_parameter(key);
  if (spec == nullptr || !spec->secret) {
    return make_error(Errc::kInvalidArgument, "'" + key + "' is not a secret parameter");
  }
  SQLPOST_TRY_ASSIGN(const std::string secret, read_secret(key + ": "));
  return set_config(db, key, secret);
}

std::string config_keys_help() {
  std::string help = "Keys:";
  for (const auto& spec : parameter_specs()) {
    help += "\n  " + std::string(spec.key) + ": " + std::string(spec.help);
  }
  return help;
}

void add_config(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("config", "Show or set control parameters (KEY=VALUE; KEY= removes)");
  cmd->footer(config_keys_help());
  auto db = std::make_shared<std::string>();
  auto assignments = std::make_shared<std::vector<std::string>>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("KEY=VALUE", *assignments, "parameters to set");
  auto secret = std::make_shared<std::string>();
  cmd->add_option("--secret", *secret,
                  "set a password key, read without echo (or one line from standard input)");
  auto all = std::make_shared<bool>(false);
  cmd->add_flag("--all", *all, "show every key, with the defaults of those not set");
  cmd->callback([&action, db, assignments, secret, all] {
    action = [db, assignments, secret, all]() -> Result<> {
      if (!secret->empty()) {
        SQLPOST_TRY(with_site_write(*db, [&](Database& d) { return set_secret(d, *secret); }));
        SQLPOST_TRY(keep_private(*db));
      }
      if (assignments->empty() && secret->empty()) {
        SQLPOST_TRY_ASSIGN(Database d, open_site(*db));
        return show_config(d, *all);
      }
      if (assignments->empty()) {
        return success();
      }
      return with_site_write(*db, [&](Database& d) { return change_config(d, *assignments); });
    };
  });
}

// ---- extract

void add_extract(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("extract", "Write a remote site's starting database");
  auto db = std::make_shared<std::string>();
  auto site = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  cmd->add_option("DB", *db, "the consolidated (or parent) database")->required();
  cmd->add_option("SITE", *site, "the remote site to extract")->required();
  cmd->add_option("--output", *output, "the new database file (mode 0600)")->required();
  cmd->callback([&action, db, site, output] {
    action = [db, site, output]() -> Result<> {
      SQLPOST_TRY_ASSIGN(Database d, open_site(*db));
      SQLPOST_TRY_ASSIGN(const ExtractSummary s, extract_site(d, *site, *output));
      SQLPOST_TRY(keep_private(*output));
      std::cout << "extracted " << *site << " to " << *output << ": " << s.tables << " table(s), "
                << s.rows << " row(s), changes after epoch " << s.epoch << " follow by mail\n";
      return success();
    };
  });
}

// ---- run

void log_report(const RunReport& r) {
  for (const auto& d : r.details) {
    log_debug(d);
  }
  for (const auto& n : r.notes) {
    log_info(n);
  }
  for (const auto& p : r.problems) {
    log_warn(p);
  }
  log_info("received " + std::to_string(r.parts_received) + " part(s) (" +
           std::to_string(r.duplicates) + " duplicate, " + std::to_string(r.rejected) +
           " rejected, " + std::to_string(r.foreign) + " foreign left alone); applied " +
           std::to_string(r.messages_applied) + " message(s), " +
           std::to_string(r.changes_applied) + " change(s); prepared " +
           std::to_string(r.messages_prepared) + " message(s); sent " +
           std::to_string(r.parts_sent) + " part(s), " + std::to_string(r.acks_sent) + " ack(s)");
}

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// A pass that ran (not one turned away by another agent's lock) goes into the history.
void record_history(const std::string& db, PassRecord pass) {
  if (pass.exit_code == kExitBusy) {
    return;
  }
  pass.ended_at = unix_now();
  if (auto recorded = record_pass(db, pass); !recorded.ok()) {
    log_warn("the history of this run was not recorded: " + recorded.error().message);
  }
}

// alert.mailto and alert.hook hear of every alert raised or cleared (agent/notify.h);
// what could not be told is a warning and is told at the next pass.
void tell_alert_changes(Database& site, const std::vector<Alert>& alerts) {
  auto told = notify_alert_changes(site, alerts);
  if (!told.ok()) {
    log_warn("alert notices not sent: " + told.error().message);
    return;
  }
  for (const auto& w : told->warnings) {
    log_warn(w + " (tried again at the next pass)");
  }
}

// After a pass that ran: logs the alerts in force, writes the metrics file, and
// turns a clean pass into kExitAlert when an alert is in force.
int finish_pass(const std::string& db, int exit_code, const std::string& metrics) {
  if (exit_code == kExitBusy) {
    return exit_code;
  }
  auto site = open_site(db);
  if (!site.ok()) {
    return exit_code;
  }
  const std::int64_t now = unix_now();
  auto alerts = evaluate_alerts(*site, now);
  if (!alerts.ok()) {
    log_warn("alerts not evaluated: " + alerts.error().message);
    return exit_code;
  }
  for (const auto& a : *alerts) {
    log_warn("ALERT " + a.kind + ": " + a.text);
  }
  tell_alert_changes(*site, *alerts);
  const int code = exit_code == kExitOk && !alerts->empty() ? kExitAlert : exit_code;
  if (!metrics.empty()) {
    if (auto written = write_metrics(*site, metrics, now, code, *alerts); !written.ok()) {
      log_warn(written.error().message);
    }
  }
  return code;
}

int agent_pass_unguarded(const std::string& db, const RunOptions& options,
                         const std::string& metrics) {
  PassRecord pass;
  pass.started_at = unix_now();
  pass.mode = options.send_only ? "send-only" : options.receive_only ? "receive-only" : "full";
  auto report = run_agent_once(db, options);
  if (!report.ok()) {
    log_error(report.error().message);
    pass.exit_code = exit_code_for(report.error());
    pass.error = report.error().message;
    record_history(db, pass);
    return finish_pass(db, pass.exit_code, metrics);
  }
  log_report(*report);
  pass.exit_code = exit_code_for_report(*report);
  pass.report = &report.value();
  record_history(db, pass);
  return finish_pass(db, pass.exit_code, metrics);
}

// One pass of the agent; every failure is logged, an exception too (a
// long-running agent goes on with its next pass). Returns the exit code.
int agent_pass(const std::string& db, const RunOptions& options, const std::string& metrics) {
  return run_guarded([&] { return agent_pass_unguarded(db, options, metrics); });
}

struct RunSettings {
  std::string db;
  bool once = false;  // the default anyway; the flag only excludes --every
  RunOptions options;
  std::string every;
  LogOptions log;
  std::string metrics;
};

Result<> run_agent_command(RunSettings settings, int& exit_code) {
  SQLPOST_TRY(init_logging(settings.log));
  if (settings.every.empty()) {
    exit_code = agent_pass(settings.db, settings.options, settings.metrics);
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto interval, parse_interval(settings.every));
  SQLPOST_TRY_ASSIGN(const AgentLock lock, AgentLock::acquire(settings.db));  // for the whole run
  settings.options.lock_held = true;
  const StopSignal stop;
  log_info("agent for " + settings.db + " runs every " + settings.every +
           "; SIGTERM or Ctrl-C stops it after the current pass");
  SQLPOST_TRY_ASSIGN(const auto push, PushWakeup::open(settings.db, settings.options, stop));
  const auto pass = [&] { return agent_pass(settings.db, settings.options, settings.metrics); };
  exit_code = push ? run_every(interval, stop, pass, *push) : run_every(interval, stop, pass);
  return success();
}

void add_run(CLI::App& app, Action& action, int& exit_code) {
  auto* cmd = app.add_subcommand("run", "Run the message agent: receive, apply, then send");
  auto s = std::make_shared<RunSettings>();
  cmd->add_option("DB", s->db, "SQLite database file")->required();
  // CLI11 keeps a reference to every bound variable until parse(): all of them live
  // in `s`, which the callback holds (a local here was written after it was freed).
  auto* once_flag = cmd->add_flag("--once", s->once,
                                  "one pass, then exit (the default; for cron / Task Scheduler)");
  cmd->add_option(
         "--every", s->every,
         "keep running: a pass every INTERVAL (30s, 5m, 2h, 1d) until SIGTERM/SIGINT, and at "
         "once on new mail (IMAP IDLE) or a commit unless push=no")
      ->excludes(once_flag);
  auto* send_only = cmd->add_flag("--send-only", s->options.send_only, "only prepare and send");
  cmd->add_flag("--receive-only", s->options.receive_only, "only receive and apply")
      ->excludes(send_only);
  cmd->add_flag("--send-now", s->options.send_now,
                "prepare messages for every partner now, whatever its send schedule");
  cmd->add_option("--log", s->log.file, "also log to FILE (rotated at 10 MiB, 5 files kept)");
  cmd->add_flag("-v,--verbose", s->log.verbose, "log more detail");
  cmd->add_option("--metrics", s->metrics,
                  "after each pass, rewrite FILE (Prometheus textfile) with metrics and alerts");
  cmd->callback([&action, &exit_code, s] {
    action = [s, &exit_code]() -> Result<> { return run_agent_command(*s, exit_code); };
  });
}

// ---- conflicts

nlohmann::json value_json(const Value& v) {
  const auto& s = v.storage();
  if (const auto* i = std::get_if<std::int64_t>(&s)) {
    return *i;
  }
  if (const auto* d = std::get_if<double>(&s)) {
    return *d;
  }
  if (const auto* t = std::get_if<Text>(&s)) {
    return t->bytes;  // invalid UTF-8 is replaced when printed
  }
  return v.is_null() ? nlohmann::json(nullptr) : nlohmann::json(v.debug_string());
}

nlohmann::json conflict_json(const ConflictRecord& r) {
  return {{"id", r.id},
          {"at", r.at},
          {"table", r.table},
          {"key", r.row_key},
          {"kind", r.kind},
          {"column", r.column ? nlohmann::json(*r.column) : nlohmann::json(nullptr)},
          {"local", value_json(r.local)},
          {"old", value_json(r.old)},
          {"incoming", value_json(r.incoming)},
          {"resolved", value_json(r.resolved)},
          {"from_site", r.from_site},
          {"local_site", r.local_site},
          {"policy", r.policy},
          {"outcome", r.outcome},
          {"detail", r.detail}};
}

void print_conflict(const ConflictRecord& r) {
  std::cout << "#" << r.id << " " << r.table << " " << r.row_key << " " << r.kind;
  if (r.column) {
    std::cout << " " << *r.column << ": local " << r.local.debug_string() << ", old "
              << r.old.debug_string() << ", from " << r.from_site << " "
              << r.incoming.debug_string() << " -> " << r.resolved.debug_string();
  } else {
    std::cout << " from " << r.from_site;
  }
  std::cout << " (" << r.policy << ": " << r.outcome << ")";
  if (!r.detail.empty()) {
    std::cout << " " << r.detail;
  }
  std::cout << "\n";
}

Result<> show_conflicts(const std::string& path, bool json, std::int64_t limit) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  SQLPOST_TRY_ASSIGN(const auto records, load_conflicts(db, limit));
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : records) {
      out.push_back(conflict_json(r));
    }
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return success();
  }
  for (const auto& r : records) {
    print_conflict(r);
  }
  std::cout << records.size() << " conflict(s) shown, newest first\n";
  return success();
}

void add_conflicts(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("conflicts", "List the conflicts this site recorded");
  auto db = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto limit = std::make_shared<std::int64_t>(100);
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_flag("--json", *json, "as JSON");
  cmd->add_option("--limit", *limit, "how many, newest first (default 100)");
  cmd->callback([&action, db, json, limit] {
    action = [db, json, limit]() -> Result<> { return show_conflicts(*db, *json, *limit); };
  });
}

// ---- passthrough

struct PassthroughRequest {
  std::string db;
  std::string site;
  bool all = false;
  bool only = false;
  std::string sql;
};

Result<> run_here_without_capture(Database& db, const std::string& sql) {
  SQLPOST_TRY_ASSIGN(OriginMark mark, OriginMark::set(db, kPassthroughOrigin));
  SQLPOST_TRY(db.exec(sql));
  return mark.clear();
}

Result<> passthrough(const PassthroughRequest& r) {
  if (r.all == !r.site.empty()) {
    return make_error(Errc::kInvalidArgument, "say where the SQL goes: --site NAME or --all");
  }
  SQLPOST_TRY_ASSIGN(Database db, open_site(r.db));
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
  if (!r.site.empty()) {
    SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, r.site));
    if (partner.relation != Relation::kChild) {
      return make_error(Errc::kInvalidArgument,
                        "'" + r.site + "' is this site's parent; passthrough goes to children");
    }
  }
  if (!r.only) {
    SQLPOST_TRY(run_here_without_capture(db, r.sql));
  }
  SQLPOST_TRY(regenerate_capture(db));
  SQLPOST_TRY(log_passthrough(db, r.sql, r.all ? Value() : Value::text(r.site)));
  SQLPOST_TRY(tx.commit());
  std::cout << (r.only ? "" : "ran here; ") << "sent to " << (r.all ? "every child" : r.site)
            << " with the next run, in order with the data\n";
  return success();
}

void add_passthrough(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("passthrough",
                                 "Send SQL (e.g. ALTER TABLE) to children through the stream");
  auto r = std::make_shared<PassthroughRequest>();
  cmd->add_option("DB", r->db, "SQLite database file")->required();
  auto* site = cmd->add_option("--site", r->site, "the one child to run it");
  cmd->add_flag("--all", r->all, "every child (and theirs)")->excludes(site);
  cmd->add_flag("--only", r->only, "do not run it at this site");
  cmd->add_option("SQL", r->sql, "the statements")->required();
  cmd->callback([&action, r] { action = [r]() -> Result<> { return passthrough(*r); }; });
}

// ---- check

Result<> check_connection(const std::string& path, int& exit_code) {
  SQLPOST_TRY_ASSIGN(Database db, open_site(path));
  SQLPOST_TRY_ASSIGN(const LocalSite site, load_local_site(db));
  SQLPOST_TRY_ASSIGN(const auto link, get_config(db, "link"));
  if (link != "smtp") {
    return make_error(Errc::kConfig, "sqlpost check tests mail servers; this site uses link=" +
                                         link.value_or("(not set)") +
                                         " (set link=smtp and the smtp./pop3./imap. keys)");
  }
  SQLPOST_TRY_ASSIGN(const auto missing, missing_mail_parameters(db));
  for (const auto& key : missing) {
    std::cout << "missing: " << key << "\n";
  }
  SQLPOST_TRY_ASSIGN(const auto config, load_mail_settings(db, site));
  SQLPOST_TRY_ASSIGN(const auto domains, partner_domains(db));
  SQLPOST_TRY_ASSIGN(const bool ok, check_mail_settings(config, domains, std::cout));
  exit_code = ok && missing.empty() ? kExitOk : kExitTransport;
  std::cout << (exit_code == kExitOk ? "all steps passed\n" : "a step failed\n");
  return success();
}

void add_check(CLI::App& app, Action& action, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "check", "Test the mail settings step by step (connect, TLS, login, mailbox)");
  auto db = std::make_shared<std::string>();
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->callback([&action, &exit_code, db] {
    action = [db, &exit_code]() -> Result<> { return check_connection(*db, exit_code); };
  });
}

// ---- resend

// Re-encodes at the current max_message_bytes first (docs/protocol.md, "sqlpost
// resend"), so lowering it after a size refusal and resending re-splits the parts.
Result<> resend(Database& db, const std::string& site, std::int64_t from) {
  SQLPOST_TRY(load_partner(db, site));
  SQLPOST_TRY_ASSIGN(const auto max_bytes, int_parameter(db, "max_message_bytes", 1'000'000));
  SQLPOST_TRY_ASSIGN(const ReencodeSummary encoded,
                     reencode_outbox(db, site, from, static_cast<std::size_t>(max_bytes)));
  if (encoded.messages > 0) {
    std::cout << encoded.messages << " message(s) re-encoded at max_message_bytes=" << max_bytes
              << ": " << encoded.parts_before << " part(s) before, " << encoded.parts_after
              << " now\n";
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("UPDATE sqlpost_outbox SET last_sent_at = NULL "
                                              "WHERE site = ? AND seq >= ?"));
  st.bind(1, site).bind(2, from);
  SQLPOST_TRY(st.run());
  std::cout << db.changes() << " part(s) for " << site << " will be sent on the next run\n";
  return success();
}

void add_resend(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("resend", "Send a partner's unacknowledged messages again");
  auto db = std::make_shared<std::string>();
  auto site = std::make_shared<std::string>();
  auto from = std::make_shared<std::int64_t>(1);
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("SITE", *site, "the partner")->required();
  cmd->add_option("--from", *from, "first sequence number to resend");
  cmd->callback([&action, db, site, from] {
    action = [db, site, from] {
      return with_site_write(*db, [&](Database& d) { return resend(d, *site, *from); });
    };
  });
}

// ---- rescan

void add_rescan(CLI::App& app, Action& action) {
  auto* cmd =
      app.add_subcommand("rescan", "Regenerate the messages a partner lost from the change log");
  auto db = std::make_shared<std::string>();
  auto site = std::make_shared<std::string>();
  auto from = std::make_shared<std::int64_t>(0);
  cmd->add_option("DB", *db, "SQLite database file")->required();
  cmd->add_option("SITE", *site, "the partner")->required();
  cmd->add_option("--from", *from,
                  "first message number to regenerate: the partner's 'applied from it' + 1 "
                  "(default: first unacknowledged)");
  cmd->callback([&action, db, site, from] {
    action = [db, site, from]() -> Result<> {
      SQLPOST_TRY_ASSIGN(Database d, open_site(*db));
      SQLPOST_TRY_ASSIGN(const std::int64_t epoch, rescan_partner(d, *site, *from));
      std::cout << "messages to " << *site << " will be regenerated from the changes after epoch "
                << epoch << " on the next run\n";
      return success();
    };
  });
}

// The command's DB argument, checked before the command opens it: not a site
// (or, for init, not an SQLite database) gives the reason.
std::optional<std::string> check_database_argument(CLI::App& app) {
  CLI::App* command = &app;
  while (!command->get_subcommands().empty()) {
    command = command->get_subcommands().front();
  }
  const CLI::Option* db = command->get_option_no_throw("DB");
  if (db == nullptr || db->count() == 0) {
    return std::nullopt;
  }
  return check_site_file(db->as<std::string>(), command->get_name() == "init");
}

}  // namespace

int run_guarded(const std::function<int()>& body) noexcept {
  try {
    try {
      return body();
    } catch (const std::exception& e) {
      std::cerr << "sqlpost: internal error: " << e.what()
                << " (nothing was lost: each step is its own transaction; please report this)\n";
    } catch (...) {
      std::cerr << "sqlpost: internal error: an unknown exception (nothing was lost: each step "
                   "is its own transaction; please report this)\n";
    }
  } catch (...) {  // writing the message failed: nothing more to say
  }
  return kExitFailure;
}

int run_cli(int argc, char** argv) {
  disable_core_dumps();  // passwords and keys stay out of core files
  CLI::App app{"sqlpost - keeps SQLite databases at many sites in step by e-mail", "sqlpost"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("sqlpost ") + kVersion);
  app.footer("'sqlpost COMMAND --help' shows a command's options; 'man sqlpost' shows them all.");
  // Hidden: the build writes the man page and the bash completion with these.
  app.add_flag_callback("--help-man",
                        [&app] {
                          std::cout << man_page(app);
                          throw CLI::Success();
                        })
      ->group("");
  app.add_flag_callback("--help-completion",
                        [&app] {
                          std::cout << bash_completion(app);
                          throw CLI::Success();
                        })
      ->group("");
  Action action;
  add_init(app, action);
  add_publish(app, action);
  add_unpublish(app, action);
  add_site(app, action);
  add_subscribe(app, action);
  add_unsubscribe(app, action);
  add_status(app, action);
  add_config(app, action);
  add_extract(app, action);
  int run_exit_code = kExitOk;
  add_run(app, action, run_exit_code);
  add_check(app, action, run_exit_code);
  add_conflicts(app, action);
  add_passthrough(app, action);
  add_resend(app, action);
  add_rescan(app, action);
  add_ops_commands(app, action);
  name_option_values(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!action) {
    return kExitUsage;
  }
  if (const auto not_a_site = check_database_argument(app)) {
    std::cerr << "sqlpost: " << *not_a_site << "\n";
    return kExitNotASite;
  }
  const Result<> result = action();
  if (!result.ok()) {
    std::cerr << "sqlpost: " << result.error().message << "\n";
    return exit_code_for(result.error());
  }
  return run_exit_code;
}

}  // namespace sqlpost
