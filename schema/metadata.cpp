#include "schema/metadata.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "schema/capture.h"
#include "schema/introspect.h"

namespace sqlpost {
namespace {

constexpr std::size_t kMaxSiteNameBytes = 64;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Relation relation_from(std::string_view text) {
  return text == "parent" ? Relation::kParent : Relation::kChild;
}

std::string columns_json(const std::vector<std::string>& columns) {
  if (columns.empty()) {
    return {};
  }
  return nlohmann::json(columns).dump();
}

Result<> check_publication_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSiteNameBytes ||
      !std::all_of(name.begin(), name.end(), is_name_char)) {
    return make_error(Errc::kInvalidArgument, "invalid publication name '" + std::string(name) +
                                                  "' (use 1-64 letters, digits, '.', '_' or '-')");
  }
  return success();
}

// Replaces each listed column by its catalog spelling; checks keys and NOT NULL.
Result<std::vector<std::string>> resolve_columns(const TableInfo& info,
                                                 const std::vector<std::string>& wanted) {
  std::vector<std::string> resolved;
  if (wanted.empty()) {
    return resolved;  // the whole table
  }
  for (const auto& name : wanted) {
    const ColumnInfo* column = info.find(name);
    if (column == nullptr) {
      return make_error(Errc::kNotFound, "table '" + info.name + "' has no column '" + name + "'");
    }
    if (column->generated) {
      return make_error(Errc::kInvalidArgument, "column '" + column->name + "' of '" + info.name +
                                                    "' is generated and cannot be published");
    }
    if (std::find(resolved.begin(), resolved.end(), column->name) != resolved.end()) {
      return make_error(Errc::kInvalidArgument, "column '" + column->name + "' listed twice");
    }
    resolved.push_back(column->name);
  }
  for (const auto& key : info.key_columns()) {
    if (std::find(resolved.begin(), resolved.end(), key) == resolved.end()) {
      return make_error(Errc::kInvalidArgument, "primary-key column '" + key + "' of '" +
                                                    info.name + "' must be in the column list");
    }
  }
  for (const auto& c : info.columns) {
    const bool listed = std::find(resolved.begin(), resolved.end(), c.name) != resolved.end();
    if (!listed && c.not_null && !c.has_default && !c.generated) {
      return make_error(Errc::kInvalidArgument,
                        "column '" + c.name + "' of '" + info.name +
                            "' is NOT NULL without a default, so it cannot be left out");
    }
  }
  return resolved;
}

Result<> check_expression(Database& db, const TableInfo& info, const std::string& expr,
                          std::string_view what) {
  if (expr.empty()) {
    return success();
  }
  auto prepared = db.prepare("SELECT (" + expr + ") FROM " + quote_identifier(info.name));
  if (!prepared.ok()) {
    return make_error(Errc::kInvalidArgument, std::string(what) + " expression '" + expr +
                                                  "' is not valid for table '" + info.name +
                                                  "': " + prepared.error().message);
  }
  return success();
}

Result<> check_conflict_policy(const TableInfo& info, const std::string& policy) {
  if (policy == "incoming" || policy == "consolidated") {
    return success();
  }
  constexpr std::string_view kNewest = "newest:";
  if (policy.rfind(kNewest, 0) == 0) {
    const std::string column = policy.substr(kNewest.size());
    if (info.find(column) == nullptr) {
      return make_error(Errc::kNotFound, "conflict policy names column '" + column + "', which '" +
                                             info.name + "' does not have");
    }
    return success();
  }
  return make_error(Errc::kInvalidArgument, "unknown conflict policy '" + policy +
                                                "' (use incoming, consolidated or newest:COLUMN)");
}

Result<bool> row_exists(Database& db, std::string_view sql, std::string_view a,
                        std::string_view b = {}) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare(sql));
  st.bind(1, a);
  if (!b.empty()) {
    st.bind(2, b);
  }
  return st.step();
}

}  // namespace

Result<std::vector<std::string>> parse_column_list(const std::string& text,
                                                   const std::string& where) {
  if (text.empty()) {
    return std::vector<std::string>{};
  }
  const auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool names = parsed.is_array() && std::all_of(parsed.begin(), parsed.end(),
                                                      [](const auto& c) { return c.is_string(); });
  if (!names) {
    return make_error(Errc::kDatabase,
                      "damaged sqlpost metadata: " + where + " holds '" + text.substr(0, 80) +
                          "', not a JSON list of column names (restore a backup of the "
                          "database, or repair that row)");
  }
  return parsed.get<std::vector<std::string>>();
}

const char* role_name(Role role) { return role == Role::kConsolidated ? "consolidated" : "remote"; }

Result<> validate_site_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSiteNameBytes || name.front() == '.' ||
      name.front() == '-' || !std::all_of(name.begin(), name.end(), is_name_char)) {
    return make_error(Errc::kInvalidArgument,
                      "invalid site name '" + std::string(name) +
                          "' (use 1-64 letters, digits, '.', '_' or '-', not starting with "
                          "'.' or '-')");
  }
  return success();
}

Result<> init_site(Database& db, const LocalSite& site) {
  SQLPOST_TRY(validate_site_name(site.name));
  if (site.address.empty()) {
    return make_error(Errc::kInvalidArgument, "the site's address must not be empty");
  }
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT INTO sqlpost_local(id, site, address, role, parent) "
                                "VALUES (1, ?, ?, ?, ?)"));
  st.bind(1, site.name).bind(2, site.address).bind(3, std::string_view(role_name(site.role)));
  if (site.parent.empty()) {
    st.bind_null(4);
  } else {
    st.bind(4, site.parent);
  }
  return st.run();
}

Result<LocalSite> load_local_site(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT site, address, role, parent FROM sqlpost_local"));
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row) {
    return make_error(Errc::kNotFound, "the database has no sqlpost site; run sqlpost init");
  }
  LocalSite site;
  site.name = st.column_text(0);
  site.address = st.column_text(1);
  site.role = st.column_text(2) == "remote" ? Role::kRemote : Role::kConsolidated;
  site.parent = st.column_text(3);
  return site;
}

Result<> set_local_address(Database& db, std::string_view address) {
  if (address.empty()) {
    return make_error(Errc::kInvalidArgument, "the site's address must not be empty");
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("UPDATE sqlpost_local SET address = ?"));
  st.bind(1, address);
  return st.run();
}

Result<> add_partner(Database& db, const Partner& partner) {
  SQLPOST_TRY(validate_site_name(partner.name));
  if (partner.address.empty()) {
    return make_error(Errc::kInvalidArgument, "site '" + partner.name + "' needs an --address");
  }
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  if (local.name == partner.name) {
    return make_error(Errc::kInvalidArgument, "'" + partner.name + "' is this site's own name");
  }
  SQLPOST_TRY_ASSIGN(const bool exists,
                     row_exists(db, "SELECT 1 FROM sqlpost_sites WHERE name = ?", partner.name));
  if (exists) {
    return make_error(Errc::kAlreadyExists, "site '" + partner.name + "' already exists");
  }
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT INTO sqlpost_sites(name, address, relation, key, "
                                "sent_epoch) VALUES (?, ?, ?, ?, ?)"));
  st.bind(1, partner.name).bind(2, partner.address);
  st.bind(3, std::string_view(partner.relation == Relation::kParent ? "parent" : "child"));
  st.bind(4, Value(Blob{partner.key}));
  st.bind(5, partner.sent_epoch);
  return st.run();
}

Result<> delete_delivery_state(Database& db, std::string_view site) {
  for (const char* table :
       {"sqlpost_streams", "sqlpost_outbox", "sqlpost_inbox", "sqlpost_sent", "sqlpost_applied",
        "sqlpost_abandoned", "sqlpost_superseded", "sqlpost_rekey"}) {
    SQLPOST_TRY_ASSIGN(Statement st,
                       db.prepare(std::string("DELETE FROM ") + table + " WHERE site = ?"));
    st.bind(1, site);
    SQLPOST_TRY(st.run());
  }
  return success();
}

Result<> remove_partner(Database& db, std::string_view name) {
  SQLPOST_TRY_ASSIGN(const bool exists,
                     row_exists(db, "SELECT 1 FROM sqlpost_sites WHERE name = ?", name));
  if (!exists) {
    return make_error(Errc::kNotFound, "no such site: " + std::string(name));
  }
  // Its subscriptions and delivery state go with it (an outbox kept for a site that
  // is gone would be reported unacknowledged for ever); history stays.
  SQLPOST_TRY_ASSIGN(Statement subs,
                     db.prepare("DELETE FROM sqlpost_subscriptions WHERE site = ?"));
  subs.bind(1, name);
  SQLPOST_TRY(subs.run());
  SQLPOST_TRY(delete_delivery_state(db, name));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("DELETE FROM sqlpost_sites WHERE name = ?"));
  st.bind(1, name);
  return st.run();
}

Result<> set_send_schedule(Database& db, std::string_view name, std::string_view schedule) {
  SQLPOST_TRY_ASSIGN(const bool exists,
                     row_exists(db, "SELECT 1 FROM sqlpost_sites WHERE name = ?", name));
  if (!exists) {
    return make_error(Errc::kNotFound, "no such site: " + std::string(name));
  }
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("UPDATE sqlpost_sites SET send_schedule = ? WHERE name = ?"));
  st.bind(1, schedule).bind(2, name);
  return st.run();
}

Result<std::vector<Partner>> load_partners(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT name, address, relation, key, sent_epoch, "
                                              "send_schedule FROM sqlpost_sites ORDER BY name"));
  std::vector<Partner> partners;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    Partner p;
    p.name = st.column_text(0);
    p.address = st.column_text(1);
    p.relation = relation_from(st.column_text(2));
    const Value key = st.column(3);
    if (const auto* blob = std::get_if<Blob>(&key.storage())) {
      p.key = blob->bytes;
    }
    p.sent_epoch = st.column_int(4);
    p.send_schedule = st.column_text(5);
    partners.push_back(std::move(p));
  }
  return partners;
}

Result<Partner> load_partner(Database& db, std::string_view name) {
  SQLPOST_TRY_ASSIGN(auto partners, load_partners(db));
  for (auto& p : partners) {
    if (p.name == name) {
      return std::move(p);
    }
  }
  return make_error(Errc::kNotFound, "no such site: " + std::string(name));
}

Result<> publish(Database& db, Article article) {
  SQLPOST_TRY(check_publication_name(article.publication));
  SQLPOST_TRY_ASSIGN(const TableInfo info, describe_table(db, article.table));
  article.table = info.name;
  SQLPOST_TRY_ASSIGN(article.columns, resolve_columns(info, article.columns));
  SQLPOST_TRY(check_expression(db, info, article.where_expr, "--where"));
  SQLPOST_TRY(check_expression(db, info, article.subscribe_by, "--subscribe-by"));
  SQLPOST_TRY(check_conflict_policy(info, article.conflict));
  SQLPOST_TRY_ASSIGN(const bool exists,
                     row_exists(db,
                                "SELECT 1 FROM sqlpost_articles WHERE publication = ? AND "
                                "table_name = ?",
                                article.publication, article.table));
  if (exists) {
    return make_error(
        Errc::kAlreadyExists,
        "table '" + article.table + "' is already in publication '" + article.publication + "'");
  }
  SQLPOST_TRY_ASSIGN(Statement pub,
                     db.prepare("INSERT OR IGNORE INTO sqlpost_publications VALUES (?)"));
  pub.bind(1, article.publication);
  SQLPOST_TRY(pub.run());
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("INSERT INTO sqlpost_articles(publication, "
                                              "table_name, columns, where_expr, subscribe_by, "
                                              "conflict) VALUES (?, ?, ?, ?, ?, ?)"));
  st.bind(1, article.publication).bind(2, article.table);
  const std::string cols = columns_json(article.columns);
  cols.empty() ? st.bind_null(3) : st.bind(3, cols);
  article.where_expr.empty() ? st.bind_null(4) : st.bind(4, article.where_expr);
  article.subscribe_by.empty() ? st.bind_null(5) : st.bind(5, article.subscribe_by);
  st.bind(6, article.conflict);
  SQLPOST_TRY(st.run());
  return regenerate_capture(db);
}

Result<> widen_article(Database& db, std::string_view publication, std::string_view table,
                       const std::vector<std::string>& columns) {
  SQLPOST_TRY_ASSIGN(const TableInfo info, describe_table(db, table));
  SQLPOST_TRY_ASSIGN(const auto wanted, resolve_columns(info, columns));
  SQLPOST_TRY_ASSIGN(Statement find, db.prepare("SELECT columns FROM sqlpost_articles WHERE "
                                                "publication = ? AND table_name = ?"));
  find.bind(1, publication).bind(2, info.name);
  SQLPOST_TRY_ASSIGN(const bool exists, find.step());
  if (!exists) {
    return make_error(Errc::kNotFound, "publication '" + std::string(publication) +
                                           "' has no table '" + info.name + "'");
  }
  SQLPOST_TRY_ASSIGN(
      const auto now,
      parse_column_list(find.column_text(0), "sqlpost_articles row (" + std::string(publication) +
                                                 ", " + info.name + ") column 'columns'"));
  for (const auto& c : now) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), c) == wanted.end()) {
      return make_error(Errc::kInvalidArgument,
                        "column '" + c +
                            "' is published now; an article can only be widened "
                            "(unpublish and publish again to narrow it)");
    }
  }
  if (now.empty() || (!wanted.empty() && wanted.size() == now.size())) {
    return make_error(Errc::kAlreadyExists, "table '" + info.name +
                                                "' is already in publication '" +
                                                std::string(publication) + "' with these columns");
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("UPDATE sqlpost_articles SET columns = ? WHERE "
                                              "publication = ? AND table_name = ?"));
  const std::string cols = columns_json(wanted);
  cols.empty() ? st.bind_null(1) : st.bind(1, cols);
  st.bind(2, publication).bind(3, info.name);
  SQLPOST_TRY(st.run());
  return regenerate_capture(db);
}

Result<> unpublish(Database& db, std::string_view publication, std::string_view table) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("DELETE FROM sqlpost_articles WHERE publication = ?1 AND "
                                "(?2 = '' OR table_name = ?2 COLLATE NOCASE)"));
  st.bind(1, publication).bind(2, table);
  SQLPOST_TRY(st.run());
  if (db.changes() == 0) {
    return make_error(Errc::kNotFound,
                      "nothing to unpublish: publication '" + std::string(publication) + "'" +
                          (table.empty() ? "" : " has no table '" + std::string(table) + "'"));
  }
  if (table.empty()) {
    SQLPOST_TRY_ASSIGN(Statement subs,
                       db.prepare("DELETE FROM sqlpost_subscriptions WHERE publication = ?"));
    subs.bind(1, publication);
    SQLPOST_TRY(subs.run());
    SQLPOST_TRY_ASSIGN(Statement pub,
                       db.prepare("DELETE FROM sqlpost_publications WHERE name = ?"));
    pub.bind(1, publication);
    SQLPOST_TRY(pub.run());
  }
  return regenerate_capture(db);
}

Result<std::vector<Article>> load_articles(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT publication, table_name, columns, where_expr, "
                                "subscribe_by, conflict FROM sqlpost_articles ORDER BY "
                                "publication, table_name"));
  std::vector<Article> articles;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    Article a;
    a.publication = st.column_text(0);
    a.table = st.column_text(1);
    SQLPOST_TRY_ASSIGN(
        a.columns, parse_column_list(st.column_text(2), "sqlpost_articles row (" + a.publication +
                                                            ", " + a.table + ") column 'columns'"));
    a.where_expr = st.column_text(3);
    a.subscribe_by = st.column_text(4);
    a.conflict = st.column_text(5);
    articles.push_back(std::move(a));
  }
  return articles;
}

Result<std::vector<std::string>> load_publications(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT name FROM sqlpost_publications ORDER BY 1"));
  return st.rows([](const Statement& row) { return row.column_text(0); });
}

Result<> subscribe(Database& db, const Subscription& subscription) {
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, subscription.site));
  if (partner.relation != Relation::kChild) {
    return make_error(Errc::kInvalidArgument, "site '" + partner.name +
                                                  "' is this site's parent; only child sites "
                                                  "subscribe");
  }
  SQLPOST_TRY_ASSIGN(const bool pub,
                     row_exists(db, "SELECT 1 FROM sqlpost_publications WHERE name = ?",
                                subscription.publication));
  if (!pub) {
    return make_error(Errc::kNotFound, "no such publication: " + subscription.publication);
  }
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("INSERT INTO sqlpost_subscriptions(site, "
                                              "publication, value) VALUES (?, ?, ?)"));
  st.bind(1, subscription.site).bind(2, subscription.publication).bind(3, subscription.value);
  auto inserted = st.run();
  if (!inserted.ok()) {
    return make_error(
        Errc::kAlreadyExists,
        "site '" + subscription.site + "' is already subscribed to '" + subscription.publication +
            "'" +
            (subscription.value.empty() ? std::string()
                                        : " with value '" + subscription.value + "'"));
  }
  return success();
}

Result<> unsubscribe(Database& db, std::string_view site, std::string_view publication) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("DELETE FROM sqlpost_subscriptions WHERE site = ? "
                                              "AND publication = ?"));
  st.bind(1, site).bind(2, publication);
  SQLPOST_TRY(st.run());
  if (db.changes() == 0) {
    return make_error(Errc::kNotFound, "site '" + std::string(site) + "' is not subscribed to '" +
                                           std::string(publication) + "'");
  }
  return success();
}

Result<std::vector<Subscription>> load_subscriptions(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT site, publication, value FROM "
                                              "sqlpost_subscriptions ORDER BY 1, 2, 3"));
  return st.rows([](const Statement& row) {
    return Subscription{row.column_text(0), row.column_text(1), row.column_text(2)};
  });
}

Result<std::optional<std::string>> get_config(Database& db, std::string_view key) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT value FROM sqlpost_config WHERE key = ?"));
  st.bind(1, key);
  SQLPOST_TRY_ASSIGN(const bool row, st.step());
  if (!row) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(st.column_text(0));
}

Result<> set_config(Database& db, std::string_view key, std::string_view value) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("INSERT OR REPLACE INTO sqlpost_config VALUES (?, ?)"));
  st.bind(1, key).bind(2, value);
  return st.run();
}

Result<> unset_config(Database& db, std::string_view key) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("DELETE FROM sqlpost_config WHERE key = ?"));
  st.bind(1, key);
  return st.run();
}

Result<std::vector<std::pair<std::string, std::string>>> load_config(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT key, value FROM sqlpost_config ORDER BY 1"));
  return st.rows([](const Statement& row) {
    return std::pair{row.column_text(0), row.column_text(1)};
  });
}

}  // namespace sqlpost
