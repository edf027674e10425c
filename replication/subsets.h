// sqlpost/replication/subsets.h — which rows of a table a partner holds.
//
// Contract: a child holds the rows of the articles of the publications it subscribes
// to: an article with neither `--where` nor `--subscribe-by` holds the whole table;
// otherwise a row is in when WHERE is true for it and its SUBSCRIBE BY value (as
// text) is one of the child's values for that publication. A parent holds every
// row. Expressions are the administrator's SQL over the row's columns, named as the
// table's columns (qualified names like orders.customer_id work, and subqueries see
// the site's current database — how a child table follows its parent's value).
// contains() evaluates one row image (a change's old or new values) with prepared
// statements cached per expression; nullopt when a SUBSCRIBE BY value is NULL
// (e.g. the parent row of a dependent table is gone). row_filter() is the same
// test as an SQL condition over the live table, for extraction.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "schema/capture.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

// Every site's subscriptions and every article, read once per pass so that the
// cost of a pass over many partners grows with the subscriptions, not their square.
struct SubscriptionCatalog {
  std::vector<Article> articles;
  // site -> publication -> its SUBSCRIBE BY values ("" when the article has none)
  std::map<std::string, std::map<std::string, std::set<std::string>>> by_site;

  static Result<SubscriptionCatalog> load(Database& db);
  // The tables whose changes go to `partner`: every article's table for a parent,
  // the tables of the publications it subscribes to for a child.
  [[nodiscard]] std::set<std::string> tables_routed_to(const Partner& partner) const;
};

class SubsetFilter {
 public:
  static Result<SubsetFilter> load(Database& db, const Partner& partner);
  static SubsetFilter from(const SubscriptionCatalog& catalog, const Partner& partner);

  // True when the partner holds every row of `table` (or `table` is not routed to it).
  [[nodiscard]] bool whole(const std::string& table) const;
  Result<std::optional<bool>> contains(Database& db, const CaptureLayout& layout,
                                       const Row& image) const;
  // An SQL condition over `table` selecting the partner's rows ("1" for all).
  [[nodiscard]] std::string row_filter(const std::string& table) const;

  struct Rule {
    std::string where_expr;
    std::string subscribe_by;
    std::set<std::string> values;
    [[nodiscard]] std::string key() const { return where_expr + '\x1f' + subscribe_by; }
  };
  // One rule's verdict on one image: WHERE, and the SUBSCRIBE BY value as text.
  struct Evaluation {
    bool where_ok = true;
    std::optional<std::string> value;  // nullopt: NULL (or no SUBSCRIBE BY)
  };
  // The rules of a table that is not whole (empty when it is).
  [[nodiscard]] const std::vector<Rule>& rules(const std::string& table) const;
  static Result<Evaluation> evaluate_rule(Database& db, const CaptureLayout& layout,
                                          const Row& image, const Rule& rule);
  // contains() from evaluations already made, by rule key.
  static std::optional<bool> member(const std::vector<Rule>& rules,
                                    const std::map<std::string, Evaluation>& evaluations);

 private:
  std::set<std::string> whole_tables_;
  std::map<std::string, std::vector<Rule>> rules_;  // table -> rules (any one suffices)
  bool everything_ = false;                         // the parent
};

}  // namespace sqlpost
