#include "replication/subsets.h"

#include <variant>

namespace sqlpost {
namespace {

// SELECT <expression> over one row image bound as ?1..?n, aliased as the table.
std::string image_query(const CaptureLayout& layout, const std::string& expression) {
  std::string columns;
  for (std::size_t i = 0; i < layout.columns.size(); ++i) {
    columns += (i == 0 ? "" : ", ") + std::string("?") + std::to_string(i + 1) + " AS " +
               quote_identifier(layout.columns[i]);
  }
  return "SELECT " + expression + " FROM (SELECT " + columns + ") AS " +
         quote_identifier(layout.table);
}

Result<Value> evaluate(Database& db, const CaptureLayout& layout, const Row& image,
                       const std::string& expression) {
  auto st = db.cached(image_query(layout, expression));
  if (!st.ok()) {
    return make_error(Errc::kConfig, "the subset expression '" + expression + "' of table '" +
                                         layout.table + "' does not work: " + st.error().message);
  }
  for (std::size_t i = 0; i < image.size(); ++i) {
    (*st)->bind(static_cast<int>(i + 1), image[i]);
  }
  SQLPOST_TRY_ASSIGN(const bool row, (*st)->step());
  Value v = row ? (*st)->column(0) : Value();
  (*st)->reset();
  return v;
}

}  // namespace

Result<SubscriptionCatalog> SubscriptionCatalog::load(Database& db) {
  SubscriptionCatalog catalog;
  SQLPOST_TRY_ASSIGN(catalog.articles, load_articles(db));
  SQLPOST_TRY_ASSIGN(const auto subscriptions, load_subscriptions(db));
  for (const auto& s : subscriptions) {
    catalog.by_site[s.site][s.publication].insert(s.value);
  }
  return catalog;
}

std::set<std::string> SubscriptionCatalog::tables_routed_to(const Partner& partner) const {
  std::set<std::string> tables;
  const auto site = by_site.find(partner.name);
  for (const auto& a : articles) {
    const bool subscribed = site != by_site.end() && site->second.count(a.publication) > 0;
    if (partner.relation == Relation::kParent || subscribed) {
      tables.insert(a.table);
    }
  }
  return tables;
}

Result<SubsetFilter> SubsetFilter::load(Database& db, const Partner& partner) {
  if (partner.relation == Relation::kParent) {
    return from(SubscriptionCatalog{}, partner);
  }
  SQLPOST_TRY_ASSIGN(const auto catalog, SubscriptionCatalog::load(db));
  return from(catalog, partner);
}

SubsetFilter SubsetFilter::from(const SubscriptionCatalog& catalog, const Partner& partner) {
  SubsetFilter f;
  if (partner.relation == Relation::kParent) {
    f.everything_ = true;
    return f;
  }
  const auto site = catalog.by_site.find(partner.name);
  if (site == catalog.by_site.end()) {
    return f;
  }
  for (const auto& a : catalog.articles) {
    const auto subscribed = site->second.find(a.publication);
    if (subscribed == site->second.end()) {
      continue;
    }
    if (a.where_expr.empty() && a.subscribe_by.empty()) {
      f.whole_tables_.insert(a.table);
      continue;
    }
    f.rules_[a.table].push_back(Rule{a.where_expr, a.subscribe_by, subscribed->second});
  }
  return f;
}

bool SubsetFilter::whole(const std::string& table) const {
  return everything_ || whole_tables_.count(table) > 0 || rules_.count(table) == 0;
}

const std::vector<SubsetFilter::Rule>& SubsetFilter::rules(const std::string& table) const {
  static const std::vector<Rule> kNone;
  const auto found = rules_.find(table);
  return everything_ || found == rules_.end() ? kNone : found->second;
}

Result<SubsetFilter::Evaluation> SubsetFilter::evaluate_rule(Database& db,
                                                             const CaptureLayout& layout,
                                                             const Row& image, const Rule& rule) {
  Evaluation e;
  if (!rule.where_expr.empty()) {
    SQLPOST_TRY_ASSIGN(
        const Value ok,
        evaluate(db, layout, image, "CASE WHEN (" + rule.where_expr + ") THEN 1 ELSE 0 END"));
    e.where_ok = !(ok == Value(std::int64_t{0}));
  }
  if (e.where_ok && !rule.subscribe_by.empty()) {
    SQLPOST_TRY_ASSIGN(const Value v,
                       evaluate(db, layout, image, "CAST((" + rule.subscribe_by + ") AS TEXT)"));
    if (const auto* text = std::get_if<Text>(&v.storage())) {
      e.value = text->bytes;
    }
  }
  return e;
}

std::optional<bool> SubsetFilter::member(const std::vector<Rule>& rules,
                                         const std::map<std::string, Evaluation>& evaluations) {
  std::optional<bool> result(false);
  for (const auto& rule : rules) {
    const Evaluation& e = evaluations.at(rule.key());
    if (!e.where_ok) {
      continue;
    }
    if (rule.subscribe_by.empty()) {
      return true;
    }
    if (!e.value) {
      result.reset();  // NULL: unknown
      continue;
    }
    if (rule.values.count(*e.value) > 0) {
      return true;
    }
  }
  return result;
}

Result<std::optional<bool>> SubsetFilter::contains(Database& db, const CaptureLayout& layout,
                                                   const Row& image) const {
  if (whole(layout.table)) {
    return std::optional<bool>(true);
  }
  std::map<std::string, Evaluation> evaluations;
  for (const auto& rule : rules_.at(layout.table)) {
    SQLPOST_TRY_ASSIGN(evaluations[rule.key()], evaluate_rule(db, layout, image, rule));
  }
  return member(rules_.at(layout.table), evaluations);
}

std::string SubsetFilter::row_filter(const std::string& table) const {
  if (whole(table)) {
    return "1";
  }
  std::string any;
  for (const auto& rule : rules_.at(table)) {
    std::string test = rule.where_expr.empty() ? "1" : "(" + rule.where_expr + ")";
    if (!rule.subscribe_by.empty()) {
      std::string list;
      for (const auto& v : rule.values) {
        list += (list.empty() ? "" : ", ") + quote_literal(v);
      }
      test += " AND CAST((" + rule.subscribe_by + ") AS TEXT) IN (" + list + ")";
    }
    any += (any.empty() ? "(" : " OR (") + test + ")";
  }
  return any;
}

}  // namespace sqlpost
