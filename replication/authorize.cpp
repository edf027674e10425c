#include "replication/authorize.h"

#include <utility>

namespace sqlpost {

Result<Authorization> authorization_for(Database& db, const Partner& partner) {
  Authorization a;
  a.partner = partner.name;
  a.from_parent = partner.relation == Relation::kParent;
  std::set<std::string> subscribed;
  if (!a.from_parent) {
    SQLPOST_TRY_ASSIGN(const auto subscriptions, load_subscriptions(db));
    for (const auto& s : subscriptions) {
      if (s.site == partner.name) {
        subscribed.insert(s.publication);
      }
    }
  }
  SQLPOST_TRY_ASSIGN(const auto articles, load_articles(db));
  for (const auto& article : articles) {
    if (!a.from_parent && subscribed.count(article.publication) == 0) {
      continue;
    }
    TableGrant& grant = a.tables[article.table];
    grant.every_column = grant.every_column || article.columns.empty();
    grant.columns.insert(article.columns.begin(), article.columns.end());
  }
  return a;
}

Result<> Authorization::check_block(const TableBlock& block) const {
  const std::string who = (from_parent ? "parent site " : "child site ") + partner;
  const auto grant = tables.find(block.table);
  if (grant == tables.end()) {
    return make_error(Errc::kAuthentication,
                      "not authorized: " + who + " sent changes to table '" + block.table +
                          "', which is in none of " +
                          (from_parent ? "this site's articles" : "the articles it subscribes to") +
                          "; nothing of the message was applied");
  }
  if (grant->second.every_column) {
    return success();
  }
  for (const auto& column : block.columns) {
    if (grant->second.columns.count(column) == 0) {
      std::string why = "not authorized: " + who;
      why.append(" sent changes to column '").append(column);
      why.append("' of table '").append(block.table);
      why.append("', which its articles do not publish; nothing of the message was applied");
      return make_error(Errc::kAuthentication, std::move(why));
    }
  }
  return success();
}

}  // namespace sqlpost
