// sqlpost/schema/metadata.h — the site's own description: who it is, its
// partners, publications, articles, subscriptions and control parameters.
//
// Contract: every mutating call validates first and changes the database only
// when everything is valid (callers wrap it in one write transaction; the
// functions that change publications also regenerate the capture triggers in
// that same transaction). Errors are one line naming the problem.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "schema/db.h"

namespace sqlpost {

enum class Role { kConsolidated, kRemote };
const char* role_name(Role role);

struct LocalSite {
  std::string name;
  std::string address;
  Role role = Role::kConsolidated;
  std::string parent;  // empty at the consolidated site
};

enum class Relation { kChild, kParent };

struct Partner {
  std::string name;
  std::string address;
  Relation relation = Relation::kChild;
  std::vector<std::uint8_t> key;
  std::int64_t sent_epoch = 0;
  std::string send_schedule = {};  // replication/send_schedule.h; "": send at every run
};

struct Article {
  std::string publication;
  std::string table;
  std::vector<std::string> columns;  // empty: every column
  std::string where_expr;            // empty: every row
  std::string subscribe_by;          // empty: no per-subscription value
  std::string conflict = "incoming";
};

struct Subscription {
  std::string site;
  std::string publication;
  std::string value;
};

// Site names: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'.
Result<> validate_site_name(std::string_view name);

Result<> init_site(Database& db, const LocalSite& site);
Result<LocalSite> load_local_site(Database& db);
// Changes this site's own address (where partners send its mail).
Result<> set_local_address(Database& db, std::string_view address);

Result<> add_partner(Database& db, const Partner& partner);
// A partner's delivery state (streams, outbox, inbox, sent and applied records):
// gone with the partner, or reset when it is extracted again.
Result<> delete_delivery_state(Database& db, std::string_view site);
// The partner, its subscriptions and its delivery state; history stays.
Result<> remove_partner(Database& db, std::string_view name);
// Stores a partner's send schedule as given (the caller validated it);
// Errc::kNotFound for an unknown site.
Result<> set_send_schedule(Database& db, std::string_view name, std::string_view schedule);
Result<std::vector<Partner>> load_partners(Database& db);
Result<Partner> load_partner(Database& db, std::string_view name);

// Adds an article (creating the publication when new) after checking the
// table, its primary key and the column list; regenerates capture triggers.
Result<> publish(Database& db, Article article);
// Widens an existing article's column list to `columns` (empty: every column),
// which must hold every column it publishes now; regenerates capture triggers.
Result<> widen_article(Database& db, std::string_view publication, std::string_view table,
                       const std::vector<std::string>& columns);
// Removes an article, or the whole publication when table is empty.
Result<> unpublish(Database& db, std::string_view publication, std::string_view table);
Result<std::vector<Article>> load_articles(Database& db);
Result<std::vector<std::string>> load_publications(Database& db);

Result<> subscribe(Database& db, const Subscription& subscription);
Result<> unsubscribe(Database& db, std::string_view site, std::string_view publication);
Result<std::vector<Subscription>> load_subscriptions(Database& db);

// A column list as sqlpost_* tables store it (a JSON array of names; "" for
// every column). Anything else is damaged metadata: Errc::kDatabase naming
// `where` (the table, row and column it came from).
Result<std::vector<std::string>> parse_column_list(const std::string& text,
                                                   const std::string& where);

Result<std::optional<std::string>> get_config(Database& db, std::string_view key);
Result<> set_config(Database& db, std::string_view key, std::string_view value);
Result<> unset_config(Database& db, std::string_view key);
Result<std::vector<std::pair<std::string, std::string>>> load_config(Database& db);

}  // namespace sqlpost
