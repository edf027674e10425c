#include "replication/publication_change.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "schema/capture.h"
#include "schema/introspect.h"
#include "schema/metadata.h"
#include "schema/sandbox.h"

namespace sqlpost {
namespace {

using json = nlohmann::json;

// What an article record carries besides its publication and table.
struct Definition {
  Article article;
  std::vector<std::string> sql;  // CREATE TABLE first, then CREATE INDEX statements
  bool widens = false;           // the article existed and now publishes more columns
};

const std::string& text_of(const Value& v) {
  static const std::string kEmpty;
  const auto* text = std::get_if<Text>(&v.storage());
  return text != nullptr ? text->bytes : kEmpty;
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

Result<std::vector<Article>> articles_of(Database& db, std::string_view publication,
                                         std::string_view table) {
  SQLPOST_TRY_ASSIGN(auto articles, load_articles(db));
  std::vector<Article> found;
  for (auto& a : articles) {
    if (a.publication == publication && (table.empty() || same_name(a.table, table))) {
      found.push_back(std::move(a));
    }
  }
  return found;
}

Result<std::vector<std::string>> subscribers_of(Database& db, std::string_view publication) {
  SQLPOST_TRY_ASSIGN(const auto subscriptions, load_subscriptions(db));
  std::set<std::string> sites;
  for (const auto& s : subscriptions) {
    if (s.publication == publication) {
      sites.insert(s.site);
    }
  }
  return std::vector<std::string>(sites.begin(), sites.end());
}

Result<bool> publication_exists(Database& db, std::string_view publication) {
  SQLPOST_TRY_ASSIGN(const auto publications, load_publications(db));
  return std::find(publications.begin(), publications.end(), publication) != publications.end();
}

Result<bool> table_exists(Database& db, std::string_view table) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                              "AND name = ? COLLATE NOCASE"));
  st.bind(1, table);
  return st.step();
}

// `widens`: the article existed and now publishes more columns.
Result<std::string> definition_text(Database& db, const Article& a, bool widens) {
  SQLPOST_TRY_ASSIGN(const auto sql, table_schema_statements(db, a.table));
  json definition = {{"columns", a.columns},
                     {"where", a.where_expr},
                     {"subscribe_by", a.subscribe_by},
                     {"conflict", a.conflict},
                     {"sql", sql}};
  if (widens) {
    definition["widens"] = true;
  }
  return definition.dump();
}

Result<> announce(Database& db, const Article& a, const Value& target, bool widens = false) {
  SQLPOST_TRY_ASSIGN(const std::string definition, definition_text(db, a, widens));
  return log_article_record(db, ChangeOp::kArticleAdded, a.publication, a.table, definition,
                            target);
}

// True when `site` held a subscription to `publication` before the one just added.
Result<bool> subscribed_before(Database& db, std::string_view site, std::string_view publication) {
  SQLPOST_TRY_ASSIGN(const auto subscriptions, load_subscriptions(db));
  const auto values = std::count_if(
      subscriptions.begin(), subscriptions.end(),
      [&](const Subscription& s) { return s.site == site && s.publication == publication; });
  return values > 1;
}

// ---- receiving

Error refused(const std::string& why) {
  return Error{Errc::kAuthentication, "not authorized: " + why +
                                          "; nothing of the message was "
                                          "applied (docs/security.md)"};
}

Result<std::string> string_field(const json& j, const char* name) {
  if (!j.contains(name) || !j[name].is_string()) {
    return make_error(Errc::kCorruption,
                      std::string("an article definition has no text field '") + name + "'");
  }
  return j[name].get<std::string>();
}

Result<std::vector<std::string>> string_list(const json& j, const char* name, std::size_t max) {
  if (!j.contains(name) || !j[name].is_array() || j[name].size() > max) {
    return make_error(Errc::kCorruption, std::string("an article definition's '") + name +
                                             "' is not a list of at most " + std::to_string(max));
  }
  std::vector<std::string> items;
  for (const auto& item : j[name]) {
    if (!item.is_string()) {
      return make_error(Errc::kCorruption,
                        std::string("an article definition's '") + name + "' holds a non-text");
    }
    items.push_back(item.get<std::string>());
  }
  return items;
}

Result<Definition> parse_definition(const std::string& publication, const std::string& table,
                                    const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::kCorruption, "an article definition is not a JSON object");
  }
  Definition d;
  d.article.publication = publication;
  d.article.table = table;
  SQLPOST_TRY_ASSIGN(d.article.columns, string_list(j, "columns", kMaxPayloadColumns));
  SQLPOST_TRY_ASSIGN(d.article.where_expr, string_field(j, "where"));
  SQLPOST_TRY_ASSIGN(d.article.subscribe_by, string_field(j, "subscribe_by"));
  SQLPOST_TRY_ASSIGN(d.article.conflict, string_field(j, "conflict"));
  SQLPOST_TRY_ASSIGN(d.sql, string_list(j, "sql", kMaxArticleIndexes + 1));
  d.widens = j.contains("widens") && j["widens"].is_boolean() && j["widens"].get<bool>();
  if (d.sql.empty()) {
    return make_error(Errc::kCorruption, "an article definition has no CREATE TABLE");
  }
  return d;
}

// Drops the columns the article leaves out where SQLite allows it (as extract does).
Result<bool> drop_unpublished_columns(Database& db, const Article& a) {
  if (a.columns.empty()) {
    return false;
  }
  SQLPOST_TRY_ASSIGN(const TableInfo info, describe_table(db, a.table));
  bool dropped = false;
  for (const auto& c : info.columns) {
    const bool published = std::find(a.columns.begin(), a.columns.end(), c.name) != a.columns.end();
    if (published || c.pk_position > 0 || c.generated) {
      continue;
    }
    dropped = db.exec("ALTER TABLE " + quote_identifier(a.table) + " DROP COLUMN " +
                      quote_identifier(c.name))
                  .ok() ||
              dropped;
  }
  return dropped;
}

Result<> create_table(Database& db, const Definition& d) {
  SQLPOST_TRY(run_definition(db, DefinitionKind::kTable, d.article.table, d.sql.front()));
  SQLPOST_TRY_ASSIGN(const bool created, table_exists(db, d.article.table));
  if (!created) {
    return refused("the definition of '" + d.article.table + "' did not create it");
  }
  SQLPOST_TRY_ASSIGN(const bool dropped, drop_unpublished_columns(db, d.article));
  for (std::size_t i = 1; i < d.sql.size(); ++i) {
    auto index = run_definition(db, DefinitionKind::kIndex, d.article.table, d.sql[i]);
    // An index on a column left out cannot exist here; a refused one stops everything.
    if (!index.ok() && (index.error().code == Errc::kAuthentication || !dropped)) {
      return index;
    }
  }
  return success();
}

Result<> check_sender(Database& db, const WireChange& record, const std::string& from_site,
                      bool from_child) {
  const std::string& publication = text_of(record.key[0]);
  const std::string& table = text_of(record.key[1]);
  if (from_child) {
    return refused("child site " + from_site + " sent a publication change (table '" + table +
                   "' of publication '" + publication + "'), which only the parent may send");
  }
  if (same_name(table.substr(0, 8), "sqlpost_")) {
    return refused("parent site " + from_site + " sent a definition of table '" + table +
                   "': tables sqlpost_* are sqlpost's own");
  }
  SQLPOST_TRY_ASSIGN(const bool known, publication_exists(db, publication));
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  const bool names_this_site = text_of(record.new_values.front()) == local.name;
  if (!known && record.op == ChangeOp::kArticleRemoved) {
    return success();  // nothing here to remove
  }
  if (!known && !names_this_site) {
    return refused("parent site " + from_site + " sent a change of publication '" + publication +
                   "', which this site does not subscribe to");
  }
  return success();
}

// A column as the parent's definition declares it: parsed by SQLite itself, from
// the validated CREATE TABLE run in a private in-memory database.
struct ColumnDefinition {
  std::string name;
  std::string type;
  bool not_null = false;
  std::optional<std::string> default_sql;
};

Result<std::vector<ColumnDefinition>> declared_columns(const Definition& d) {
  SQLPOST_TRY_ASSIGN(Database scratch,
                     Database::open(":memory:", Database::Mode::kReadWriteCreate));
  SQLPOST_TRY(run_definition(scratch, DefinitionKind::kTable, d.article.table, d.sql.front()));
  SQLPOST_TRY_ASSIGN(Statement st, scratch.prepare("SELECT name, type, \"notnull\", dflt_value "
                                                   "FROM pragma_table_xinfo(?) WHERE hidden = 0"));
  st.bind(1, d.article.table);
  std::vector<ColumnDefinition> columns;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    ColumnDefinition c{st.column_text(0), st.column_text(1), st.column_int(2) != 0, {}};
    if (!st.column_is_null(3)) {
      c.default_sql = st.column_text(3);
    }
    columns.push_back(std::move(c));
  }
  return columns;
}

// Adds a column the parent's article now publishes, with the parent's declaration,
// through the passthrough sandbox.
Result<> add_column(Database& db, const std::string& table, const ColumnDefinition& c) {
  std::string sql = "ALTER TABLE " + quote_identifier(table) + " ADD COLUMN " +
                    quote_identifier(c.name) + " " + c.type;
  if (c.not_null) {
    sql += " NOT NULL";
  }
  if (c.default_sql) {
    sql += " DEFAULT (" + *c.default_sql + ")";
  }
  std::string refusal;
  auto ran = [&]() -> Result<> {
    SQLPOST_TRY_ASSIGN(const SqlSandbox sandbox, SqlSandbox::enter(db));
    auto result = db.exec(sql);
    refusal = sandbox.refusal();
    return result;
  }();
  if (!refusal.empty()) {
    return refused("adding column '" + c.name + "' to '" + table + "': " + refusal);
  }
  if (!ran.ok()) {
    return make_error(Errc::kUnsupported, "the parent widened the article of '" + table +
                                              "' by column '" + c.name +
                                              "', which this site cannot add (" +
                                              ran.error().message + "); add it by hand");
  }
  return success();
}

bool is_listed(const std::vector<std::string>& columns, const std::string& name) {
  return columns.empty() || std::find(columns.begin(), columns.end(), name) != columns.end();
}

// The parent's article publishes more columns now: this site adds the ones its
// table lacks, widens its article, and tells its own children.
Result<> apply_widened(Database& db, const Definition& d, const Article& mine,
                       const std::string& from_site) {
  SQLPOST_TRY_ASSIGN(const TableInfo local, describe_table(db, mine.table));
  SQLPOST_TRY_ASSIGN(const auto declared, declared_columns(d));
  for (const auto& c : declared) {
    if (is_listed(d.article.columns, c.name) && local.find(c.name) == nullptr) {
      SQLPOST_TRY(add_column(db, mine.table, c));
    }
  }
  auto widened = widen_article(db, mine.publication, mine.table, d.article.columns);
  if (!widened.ok() && widened.error().code != Errc::kAlreadyExists) {
    return make_error(Errc::kUnsupported,
                      "parent site " + from_site + " widened the article '" + mine.table +
                          "' of '" + mine.publication +
                          "', which this site cannot follow: " + widened.error().message);
  }
  SQLPOST_TRY_ASSIGN(const auto now, articles_of(db, mine.publication, mine.table));
  return announce(db, now.front(), Value(), true);
}

Result<> apply_added(Database& db, const WireChange& record, const std::string& from_site) {
  SQLPOST_TRY_ASSIGN(
      const Definition d,
      parse_definition(text_of(record.key[0]), text_of(record.key[1]), text_of(record.key[2])));
  SQLPOST_TRY_ASSIGN(const auto have, articles_of(db, d.article.publication, d.article.table));
  if (!have.empty() && d.widens) {
    return apply_widened(db, d, have.front(), from_site);
  }
  if (!have.empty()) {
    return success();  // this site has the article already: nothing changes here
  }
  SQLPOST_TRY_ASSIGN(const bool existed, table_exists(db, d.article.table));
  if (!existed) {
    SQLPOST_TRY(create_table(db, d));
  }
  auto added = publish(db, d.article);
  if (!added.ok()) {
    return make_error(Errc::kUnsupported,
                      "parent site " + from_site + " added table '" + d.article.table +
                          "' to publication '" + d.article.publication +
                          "', which this site cannot take: " + added.error().message);
  }
  SQLPOST_TRY_ASSIGN(const auto mine, articles_of(db, d.article.publication, d.article.table));
  SQLPOST_TRY(announce(db, mine.front(), Value()));  // for this site's own subscribers
  if (existed) {  // its rows here did not arrive as inserts: the children need them
    SQLPOST_TRY(log_table_rows(db, mine.front().table,
                               std::string(kArticleRowsOriginPrefix) + d.article.publication));
  }
  return success();
}

Result<> apply_removed(Database& db, const WireChange& record) {
  const std::string& publication = text_of(record.key[0]);
  const std::string& table = text_of(record.key[1]);
  SQLPOST_TRY_ASSIGN(const auto have, articles_of(db, publication, table));
  if (have.empty()) {
    return success();
  }
  SQLPOST_TRY(unpublish(db, publication, have.front().table));
  return log_article_record(db, ChangeOp::kArticleRemoved, publication, have.front().table, "",
                            Value());
}

}  // namespace

Result<> announce_article_added(Database& db, std::string_view publication,
                                std::string_view table) {
  SQLPOST_TRY_ASSIGN(const auto subscribers, subscribers_of(db, publication));
  if (subscribers.empty()) {
    return success();  // extract gives a new site everything
  }
  SQLPOST_TRY_ASSIGN(const auto articles, articles_of(db, publication, table));
  if (articles.empty()) {
    return make_error(Errc::kNotFound, "publication '" + std::string(publication) +
                                           "' has no table '" + std::string(table) + "'");
  }
  SQLPOST_TRY(announce(db, articles.front(), Value()));
  SQLPOST_TRY(log_table_rows(db, articles.front().table,
                             std::string(kArticleRowsOriginPrefix) + std::string(publication)));
  return success();
}

Result<> publish_live(Database& db, const Article& article) {
  SQLPOST_TRY_ASSIGN(const auto existing, articles_of(db, article.publication, article.table));
  if (existing.empty()) {
    SQLPOST_TRY(publish(db, article));
    return announce_article_added(db, article.publication, article.table);
  }
  SQLPOST_TRY(widen_article(db, article.publication, article.table, article.columns));
  SQLPOST_TRY_ASSIGN(const auto subscribers, subscribers_of(db, article.publication));
  if (subscribers.empty()) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto widened, articles_of(db, article.publication, article.table));
  SQLPOST_TRY(announce(db, widened.front(), Value(), true));
  // The rows again, now with the new columns (upserts at the subscribers).
  SQLPOST_TRY(log_table_rows(db, widened.front().table,
                             std::string(kArticleRowsOriginPrefix) + article.publication));
  return success();
}

Result<> announce_article_removed(Database& db, std::string_view publication,
                                  std::string_view table) {
  SQLPOST_TRY_ASSIGN(const auto subscribers, subscribers_of(db, publication));
  SQLPOST_TRY_ASSIGN(const auto articles, articles_of(db, publication, table));
  for (const auto& a : articles) {
    if (!table.empty()) {
      if (!subscribers.empty()) {
        SQLPOST_TRY(
            log_article_record(db, ChangeOp::kArticleRemoved, publication, a.table, "", Value()));
      }
      continue;
    }
    for (const auto& site : subscribers) {  // their subscriptions go with the publication
      SQLPOST_TRY(log_article_record(db, ChangeOp::kArticleRemoved, publication, a.table, "",
                                     Value::text(std::string(site))));
    }
  }
  return success();
}

Result<> announce_subscription(Database& db, std::string_view site, std::string_view publication) {
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, site));
  if (partner.sent_epoch == 0) {
    return success();  // not extracted yet: extract carries everything
  }
  SQLPOST_TRY_ASSIGN(const auto articles, articles_of(db, publication, ""));
  SQLPOST_TRY_ASSIGN(const bool another_value, subscribed_before(db, site, publication));
  const std::string origin =
      std::string(kArticleRowsOriginPrefix) + std::string(publication) + " " + std::string(site);
  for (const auto& a : articles) {
    if (!another_value) {  // a further --value: the site has the tables, it needs the rows
      SQLPOST_TRY(announce(db, a, Value::text(std::string(site))));
    }
    SQLPOST_TRY(log_table_rows(db, a.table, origin));
  }
  return success();
}

Result<> announce_unsubscription(Database& db, std::string_view site,
                                 std::string_view publication) {
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(db, site));
  if (partner.sent_epoch == 0) {
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto articles, articles_of(db, publication, ""));
  for (const auto& a : articles) {
    SQLPOST_TRY(log_article_record(db, ChangeOp::kArticleRemoved, publication, a.table, "",
                                   Value::text(std::string(site))));
  }
  return success();
}

Result<> apply_article_record(Database& db, const WireChange& record, const std::string& from_site,
                              bool from_child) {
  SQLPOST_TRY(check_sender(db, record, from_site, from_child));
  if (record.op == ChangeOp::kArticleAdded) {
    return apply_added(db, record, from_site);
  }
  return apply_removed(db, record);
}

}  // namespace sqlpost
