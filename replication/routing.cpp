#include "replication/routing.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "replication/changelog.h"
#include "replication/conflicts.h"
#include "replication/subsets.h"

namespace sqlpost {
namespace {

// A Payload in memory as a target.
class PayloadTarget final : public BodyTarget {
 public:
  explicit PayloadTarget(Payload& payload) : payload_(payload) {}
  void table(const TableBlock& t) override { payload_.tables.push_back(t); }
  void change(std::int64_t epoch, WireChange&& c) override {
    if (payload_.epochs.empty() || payload_.epochs.back().epoch != epoch) {
      payload_.epochs.push_back(EpochBlock{epoch, {}});
    }
    payload_.epochs.back().changes.push_back(std::move(c));
  }

 private:
  Payload& payload_;
};

class PayloadBuilder {
 public:
  explicit PayloadBuilder(BodyTarget& target) : target_(target) {}

  void add(const Change& c) {
    WireChange w;
    if (c.op == ChangeOp::kPassthrough) {
      w.op = c.op;
      w.key = c.new_values;         // the SQL
      w.new_values = c.old_values;  // the target site, or NULL
      append(c.epoch, std::move(w));
      return;
    }
    if (is_control_op(c.op)) {  // an article record: publication, table (, definition)
      w.op = c.op;
      const std::ptrdiff_t fields = c.op == ChangeOp::kArticleAdded ? 3 : 2;
      w.key.assign(c.new_values.begin(), c.new_values.begin() + fields);
      w.new_values = c.old_values;  // the target site, or NULL
      append(c.epoch, std::move(w));
      return;
    }
    if (!to_wire(c, w)) {
      return;
    }
    w.table = table_index(*c.layout);
    append(c.epoch, std::move(w));
  }

 private:
  void append(std::int64_t epoch, WireChange w) { target_.change(epoch, std::move(w)); }

  std::uint32_t table_index(const CaptureLayout& layout) {
    const auto found = index_.find(layout.id);
    if (found != index_.end()) {
      return found->second;
    }
    const auto index = static_cast<std::uint32_t>(index_.size());
    target_.table(TableBlock{layout.table, layout.columns, layout.key_count});
    index_.emplace(layout.id, index);
    return index;
  }

  static bool to_wire(const Change& c, WireChange& w) {
    w.op = c.op;
    w.key = c.key();
    const std::size_t keys = c.layout->key_count;
    const std::size_t n = c.layout->columns.size();
    if (c.op == ChangeOp::kUpdate) {
      for (const auto i : c.changed_columns()) {
        w.columns.push_back(static_cast<std::uint32_t>(i));
        w.new_values.push_back(c.new_values[i]);
        w.old_values.push_back(c.old_values[i]);
      }
      return !w.columns.empty();
    }
    const Row& image = c.op == ChangeOp::kInsert ? c.new_values : c.old_values;
    Row& target = c.op == ChangeOp::kInsert ? w.new_values : w.old_values;
    for (std::size_t i = keys; i < n; ++i) {
      w.columns.push_back(static_cast<std::uint32_t>(i));
      target.push_back(image[i]);
    }
    return true;
  }

  BodyTarget& target_;
  std::map<std::int64_t, std::uint32_t> index_;  // layout id -> table index
};

// Where the partner itself changed a row column later in the same range: the
// partner holds that value, and this site took it (else a conflict sent the decided
// row back), so an earlier change of that column from elsewhere is stale for it.
// Key: "table\x1fkey\x1fcolumn" ("*": the partner inserted the row) -> log seq.
struct Superseding {
  std::int64_t seq = 0;
  Value value;  // the partner's value of the column (column entries only)
};
using SupersededBy = std::map<std::string, Superseding>;

std::string column_key(const Change& c, const Row& key, std::string_view column) {
  return row_column_key(c.table(), key, column);
}

// Notes a change the partner made itself (c.origin == partner) in its map.
void note_partner_change(SupersededBy& last, const Partner& partner, const Change& c) {
  const Row key = c.key();
  if (c.op == ChangeOp::kDelete) {
    // A child's later delete makes earlier changes of the row stale for it (they
    // would bring it back). Towards the parent they still go: it decides, and
    // records what it could not apply.
    if (partner.relation == Relation::kChild) {
      last[column_key(c, key, "-")] = Superseding{c.seq, {}};
    }
    return;
  }
  if (c.op == ChangeOp::kInsert) {
    last[column_key(c, key, "*")] = Superseding{c.seq, {}};
    return;
  }
  for (const auto i : c.changed_columns()) {
    last[column_key(c, key, c.layout->columns[i])] = Superseding{c.seq, c.new_values[i]};
  }
}

const Superseding* superseded_at(const SupersededBy& later, const std::string& key,
                                 std::int64_t seq) {
  const auto found = later.find(key);
  return found != later.end() && found->second.seq > seq ? &found->second : nullptr;
}

// The partner deleted the row after this change: the change is stale for it.
bool deleted_later_by_partner(const Change& c, const SupersededBy& later) {
  return c.op != ChangeOp::kDelete && !later.empty() &&
         superseded_at(later, column_key(c, c.key(), "-"), c.seq) != nullptr;
}

// The change as the partner needs it: without columns it changed itself afterwards.
Change without_superseded(const Change& c, const SupersededBy& later) {
  const Row key = c.key();
  if (superseded_at(later, column_key(c, key, "*"), c.seq) != nullptr ||
      deleted_later_by_partner(c, later)) {
    Change none = c;
    none.op = ChangeOp::kUpdate;  // an update without changed columns is not sent
    none.old_values = c.op == ChangeOp::kInsert ? c.new_values : c.old_values;
    none.new_values = none.old_values;
    return none;
  }
  if (c.op == ChangeOp::kDelete) {
    return c;
  }
  Change kept = c;
  for (std::size_t i = c.layout->key_count; i < c.layout->columns.size(); ++i) {
    const Superseding* by = superseded_at(later, column_key(c, key, c.layout->columns[i]), c.seq);
    if (by == nullptr) {
      continue;
    }
    if (c.op == ChangeOp::kUpdate) {
      kept.new_values[i] = kept.old_values[i];  // no longer a change of this column
    } else {
      kept.new_values[i] = by->value;  // an insert carries what the partner holds
    }
  }
  return kept;
}

// Passthrough SQL flows down: to every child, or to the one site it names.
bool passthrough_goes_to(const Change& c, const Partner& partner) {
  if (partner.relation != Relation::kChild) {
    return false;
  }
  const Value& target = c.old_values.front();
  const auto* name = std::get_if<Text>(&target.storage());
  return target.is_null() || (name != nullptr && name->bytes == partner.name);
}

std::string text_of(const Value& v) {
  const auto* text = std::get_if<Text>(&v.storage());
  return text != nullptr ? text->bytes : std::string();
}

// An article record flows down to the children subscribed to its publication
// (or to the one site it names).
bool article_record_goes_to(const Change& c, const Partner& partner,
                            const std::set<std::string>& publications) {
  const Value& target = c.old_values.front();
  if (partner.relation != Relation::kChild || c.origin == partner.name) {
    return false;
  }
  if (!target.is_null()) {  // names its site (a removed publication's former subscriber)
    return text_of(target) == partner.name;
  }
  return publications.count(text_of(c.new_values.front())) > 0;
}

// An article record that widens an article the subscribers have already.
bool widens(const Change& c) {
  const auto definition = nlohmann::json::parse(text_of(c.new_values[2]), nullptr, false);
  return definition.is_object() && definition.contains("widens") &&
         definition["widens"].is_boolean() && definition["widens"].get<bool>();
}

// The starting rows of a table that joined a publication go only to its subscribers.
bool starting_rows_skip(const Change& c, const Partner& partner,
                        const std::set<std::string>& publications) {
  if (!is_article_rows_origin(c.origin)) {
    return false;
  }
  // "!article <publication>" or "!article <publication> <site>" (names hold no spaces)
  const std::string rest = c.origin.substr(kArticleRowsOriginPrefix.size());
  const auto space = rest.find(' ');
  const std::string publication = rest.substr(0, space);
  const bool for_partner = space == std::string::npos || rest.substr(space + 1) == partner.name;
  return partner.relation != Relation::kChild || !for_partner ||
         publications.count(publication) == 0;
}

Change as_insert(const Change& c) {
  Change insert = c;
  insert.op = ChangeOp::kInsert;
  insert.old_values.clear();
  return insert;
}

Change as_delete(const Change& c) {
  Change removal = c;
  removal.op = ChangeOp::kDelete;
  removal.new_values.clear();
  return removal;
}

// A table the partner holds part of: a row entering its subset arrives as an
// insert of the whole row, a row leaving it as a delete — also when the partner's
// own change moved the row out (it must not keep a row it no longer subscribes to).
// was_in / is_in: the old / new image in the partner's subset (nullopt: unknown).
void route_subset(const Partner& partner, const Change& c, std::optional<bool> was_in,
                  std::optional<bool> is_in, const SupersededBy& later, PayloadBuilder& builder) {
  const bool own = c.origin == partner.name;
  if (c.op == ChangeOp::kInsert) {
    if (!own && is_in == true) {
      builder.add(without_superseded(c, later));
    } else if (own && is_in != true) {  // the partner wrote a row outside its subset
      Change removal = c;
      removal.op = ChangeOp::kDelete;
      removal.old_values = c.new_values;
      removal.new_values.clear();
      builder.add(removal);
    }
    return;
  }
  if (c.op == ChangeOp::kDelete) {
    if (!own && was_in != false) {  // unknown (a dependent row's parent is gone): send it
      builder.add(c);
    }
    return;
  }
  if (was_in == true && is_in != true) {
    builder.add(as_delete(c));  // leaves the subset, whoever moved it
  } else if (was_in != true && is_in == true) {
    // Entering: also when the partner itself moved the row back in, since the delete
    // its earlier move out brought may have removed it there meanwhile.
    builder.add(without_superseded(as_insert(c), later));
  } else if (!own && was_in == true && is_in == true) {
    builder.add(without_superseded(c, later));
  }
}

// publication -> its tables, at this site.
using PublicationTables = std::map<std::string, std::set<std::string>>;

PublicationTables publication_tables(const std::vector<Article>& articles) {
  PublicationTables out;
  for (const auto& a : articles) {
    out[a.publication].insert(a.table);
  }
  return out;
}

// Everything one pass over the log needs for one partner.
struct Route {
  Partner partner;
  std::set<std::string> tables;
  std::set<std::string> publications;  // a child's subscriptions
  // Tables an article record brings it in this range (table -> the record's log seq),
  // that no other of its publications has: their earlier changes are not for it.
  std::map<std::string, std::int64_t> announced_at;
  SubsetFilter subset;
  SupersededBy superseded;
  // False when every change of the range is the partner's own: then nothing it
  // changed can supersede anything, and its changes are not noted (they would
  // cost memory per row: a remote sends its parent's million rows nowhere).
  bool supersedes = true;
  std::unique_ptr<PayloadBuilder> builder;
};

// Who might hold rows of one table with subsets: per rule, partners by value.
struct TableIndex {
  std::vector<std::size_t> whole;                   // partners holding the whole table
  std::map<std::string, SubsetFilter::Rule> rules;  // distinct rules, by key
  std::map<std::string, std::map<std::string, std::vector<std::size_t>>> by_value;
  std::map<std::string, std::vector<std::size_t>> any_value;  // rules without SUBSCRIBE BY
  std::set<std::size_t> subset_partners;
};

std::map<std::string, TableIndex> index_routes(const std::vector<Route>& routes) {
  std::map<std::string, TableIndex> index;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    for (const auto& table : routes[i].tables) {
      TableIndex& t = index[table];
      if (routes[i].subset.whole(table)) {
        t.whole.push_back(i);
        continue;
      }
      t.subset_partners.insert(i);
      for (const auto& rule : routes[i].subset.rules(table)) {
        t.rules.emplace(rule.key(), rule);
        if (rule.subscribe_by.empty()) {
          t.any_value[rule.key()].push_back(i);
        }
        for (const auto& v : rule.values) {
          t.by_value[rule.key()][v].push_back(i);
        }
      }
    }
  }
  return index;
}

using Evaluations = std::map<std::string, SubsetFilter::Evaluation>;

Result<Evaluations> evaluate_all(Database& db, const Change& c, const Row& image,
                                 const TableIndex& t) {
  Evaluations out;
  for (const auto& [key, rule] : t.rules) {
    SQLPOST_TRY_ASSIGN(out[key], SubsetFilter::evaluate_rule(db, *c.layout, image, rule));
  }
  return out;
}

// The partners whose subset the old or the new image may be in, plus the origin.
std::set<std::size_t> candidates(const TableIndex& t, const Evaluations* before,
                                 const Evaluations* after, std::optional<std::size_t> origin) {
  std::set<std::size_t> out;
  for (const Evaluations* e : {before, after}) {
    if (e == nullptr) {
      continue;
    }
    for (const auto& [key, evaluation] : *e) {
      if (!evaluation.where_ok) {
        continue;
      }
      if (const auto any = t.any_value.find(key); any != t.any_value.end()) {
        out.insert(any->second.begin(), any->second.end());
      }
      const auto rule = t.by_value.find(key);
      if (rule == t.by_value.end()) {
        continue;
      }
      if (!evaluation.value) {  // unknown: every subscriber of the rule may hold it
        for (const auto& [value, partners] : rule->second) {
          out.insert(partners.begin(), partners.end());
        }
        continue;
      }
      if (const auto found = rule->second.find(*evaluation.value); found != rule->second.end()) {
        out.insert(found->second.begin(), found->second.end());
      }
    }
  }
  if (origin && t.subset_partners.count(*origin) > 0) {
    out.insert(*origin);
  }
  return out;
}

// One change, every partner of the pass.
class Router {
 public:
  Router(Database& db, std::vector<Route>& routes)
      : db_(db), routes_(routes), index_(index_routes(routes)) {
    for (std::size_t i = 0; i < routes_.size(); ++i) {
      by_name_.emplace(routes_[i].partner.name, i);
    }
  }

  // The first pass: the partners' own changes, and the tables that records bring them.
  void note(const Change& c, const PublicationTables& pub_tables) {
    if (c.op == ChangeOp::kArticleAdded) {
      for (auto& r : routes_) {
        note_announcement(r, c, pub_tables);
      }
      return;
    }
    note_own_change(c);
  }

  void note_own_change(const Change& c) {
    if (const auto found = by_name_.find(c.origin);
        found != by_name_.end() && routes_[found->second].supersedes) {
      note_partner_change(routes_[found->second].superseded, routes_[found->second].partner, c);
    }
  }

  Result<> route(const Change& c) {
    if (c.origin == kPassthroughOrigin) {
      return success();
    }
    if (c.op == ChangeOp::kPassthrough) {
      for (auto& r : routes_) {
        if (c.origin != r.partner.name && passthrough_goes_to(c, r.partner)) {
          r.builder->add(c);
        }
      }
      return success();
    }
    if (is_control_op(c.op)) {
      for (auto& r : routes_) {
        if (article_record_goes_to(c, r.partner, r.publications)) {
          r.builder->add(c);
        }
      }
      return success();
    }
    const auto table = index_.find(c.table());
    if (table == index_.end()) {
      return success();
    }
    for (const std::size_t i : table->second.whole) {
      route_whole(routes_[i], c);
    }
    if (table->second.subset_partners.empty()) {
      return success();
    }
    return route_subsets(table->second, c);
  }

 private:
  static void note_announcement(Route& r, const Change& c, const PublicationTables& pub_tables) {
    if (!article_record_goes_to(c, r.partner, r.publications)) {
      return;
    }
    if (widens(c)) {
      return;  // the partner has the table: its earlier changes are for it
    }
    const std::string publication = text_of(c.new_values[0]);
    const std::string table = text_of(c.new_values[1]);
    for (const auto& other : r.publications) {
      const auto tables = pub_tables.find(other);
      if (other != publication && tables != pub_tables.end() && tables->second.count(table) > 0) {
        return;  // it had the table already
      }
    }
    r.announced_at.emplace(table, c.seq);
  }

  // A change of a table the partner gets only from a later article record.
  static bool before_announcement(const Route& r, const Change& c) {
    if (r.announced_at.empty()) {
      return false;
    }
    const auto at = r.announced_at.find(c.table());
    return at != r.announced_at.end() && c.seq < at->second;
  }

  static void route_whole(Route& r, const Change& c) {
    if (c.origin == r.partner.name || starting_rows_skip(c, r.partner, r.publications) ||
        before_announcement(r, c)) {
      return;
    }
    if (r.superseded.empty()) {
      r.builder->add(c);
    } else {
      r.builder->add(without_superseded(c, r.superseded));
    }
  }

  Result<> route_subsets(const TableIndex& t, const Change& c) {
    std::optional<Evaluations> before;
    std::optional<Evaluations> after;
    if (c.op != ChangeOp::kInsert) {
      SQLPOST_TRY_ASSIGN(before, evaluate_all(db_, c, c.old_values, t));
    }
    if (c.op != ChangeOp::kDelete) {
      SQLPOST_TRY_ASSIGN(after, evaluate_all(db_, c, c.new_values, t));
    }
    std::optional<std::size_t> origin;
    if (const auto found = by_name_.find(c.origin); found != by_name_.end()) {
      origin = found->second;
    }
    for (const std::size_t i :
         candidates(t, before ? &*before : nullptr, after ? &*after : nullptr, origin)) {
      Route& r = routes_[i];
      if (deleted_later_by_partner(c, r.superseded) ||
          starting_rows_skip(c, r.partner, r.publications) || before_announcement(r, c)) {
        continue;
      }
      const auto& rules = r.subset.rules(c.table());
      const std::optional<bool> was_in =
          before ? SubsetFilter::member(rules, *before) : std::optional<bool>(false);
      const std::optional<bool> is_in =
          after ? SubsetFilter::member(rules, *after) : std::optional<bool>(false);
      route_subset(r.partner, c, was_in, is_in, r.superseded, *r.builder);
    }
    return success();
  }

  Database& db_;
  std::vector<Route>& routes_;
  std::map<std::string, TableIndex> index_;
  std::map<std::string, std::size_t> by_name_;
};

std::set<std::string> publications_of(const SubscriptionCatalog& catalog, const Partner& partner) {
  std::set<std::string> publications;
  const auto site = catalog.by_site.find(partner.name);
  if (partner.relation == Relation::kChild && site != catalog.by_site.end()) {
    for (const auto& entry : site->second) {
      publications.insert(entry.first);
    }
  }
  return publications;
}

// Per partner, the epochs [from, to] whose changes from that partner go back to it
// (it was restored from a backup and lost them: docs/protocol.md).
using EchoWindows = std::map<std::string, std::pair<std::int64_t, std::int64_t>>;

Result<EchoWindows> load_echo_windows(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT site, echo_from, echo_to FROM "
                                              "sqlpost_streams WHERE echo_from IS NOT NULL"));
  EchoWindows windows;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      break;
    }
    windows[st.column_text(0)] = {st.column_int(1), st.column_int(2)};
  }
  return windows;
}

// A change inside its origin's echo window is routed as if written here.
const Change& as_routed(const Change& c, const EchoWindows& echo, Change& scratch) {
  const auto window = echo.find(c.origin);
  if (window == echo.end() || c.epoch < window->second.first || c.epoch > window->second.second) {
    return c;
  }
  scratch = c;
  scratch.origin.clear();
  return scratch;
}

// One pass over (after, upto] for the partners that were sent up to `after`.
Result<> route_group(Database& db, std::vector<Route>& routes, const PublicationTables& pub_tables,
                     std::int64_t after_epoch, std::int64_t upto_epoch, const EchoWindows& echo) {
  std::set<std::string> tables;
  for (const auto& r : routes) {
    tables.insert(r.tables.begin(), r.tables.end());
  }
  if (upto_epoch <= after_epoch) {  // no tables: article records may still go
    return success();
  }
  SQLPOST_TRY_ASSIGN(const std::set<std::string> origins,
                     origins_between(db, after_epoch, upto_epoch));
  for (auto& r : routes) {
    r.supersedes =
        echo.count(r.partner.name) > 0 ||
        std::ranges::any_of(origins, [&](const std::string& o) { return o != r.partner.name; });
  }
  Router router(db, routes);
  Change scratch;
  SQLPOST_TRY(read_changes(db, after_epoch, upto_epoch, tables, [&](const Change& c) {
    router.note(as_routed(c, echo, scratch), pub_tables);
    return success();
  }));
  return read_changes(db, after_epoch, upto_epoch, tables,
                      [&](const Change& c) { return router.route(as_routed(c, echo, scratch)); });
}

}  // namespace

Result<> route_changes_for_all(Database& db, const std::vector<Partner>& partners,
                               std::int64_t upto_epoch,
                               const std::map<std::string, BodyTarget*>& targets) {
  std::map<std::int64_t, std::vector<Route>> groups;  // by the epoch sent up to
  SQLPOST_TRY_ASSIGN(const SubscriptionCatalog catalog, SubscriptionCatalog::load(db));
  const PublicationTables pub_tables = publication_tables(catalog.articles);
  for (const auto& partner : partners) {
    Route r{partner,
            catalog.tables_routed_to(partner),
            publications_of(catalog, partner),
            {},
            SubsetFilter::from(catalog, partner),
            {},
            true,
            nullptr};
    r.builder = std::make_unique<PayloadBuilder>(*targets.at(partner.name));
    groups[partner.sent_epoch].push_back(std::move(r));
  }
  SQLPOST_TRY_ASSIGN(const EchoWindows echo, load_echo_windows(db));
  for (auto& [after_epoch, routes] : groups) {
    SQLPOST_TRY(route_group(db, routes, pub_tables, after_epoch, upto_epoch, echo));
  }
  return success();
}

Result<std::map<std::string, Payload>> collect_changes_for_all(Database& db,
                                                               const std::vector<Partner>& partners,
                                                               std::int64_t upto_epoch) {
  std::map<std::string, Payload> payloads;
  std::vector<std::unique_ptr<PayloadTarget>> owned;
  std::map<std::string, BodyTarget*> targets;
  for (const auto& partner : partners) {
    owned.push_back(std::make_unique<PayloadTarget>(payloads[partner.name]));
    targets[partner.name] = owned.back().get();
  }
  SQLPOST_TRY(route_changes_for_all(db, partners, upto_epoch, targets));
  return payloads;
}

Result<Payload> collect_changes_for(Database& db, const Partner& partner, std::int64_t after_epoch,
                                    std::int64_t upto_epoch) {
  Partner from = partner;
  from.sent_epoch = after_epoch;
  SQLPOST_TRY_ASSIGN(auto payloads, collect_changes_for_all(db, {from}, upto_epoch));
  return std::move(payloads[partner.name]);
}

}  // namespace sqlpost
