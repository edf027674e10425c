#include "replication/routing.h"

#include <map>

#include "replication/changelog.h"
#include "replication/subsets.h"

namespace sqlpost {
namespace {

class PayloadBuilder {
 public:
  explicit PayloadBuilder(Payload& payload) : payload_(payload) {}

  void add(const Change& c) {
    WireChange w;
    if (c.op == ChangeOp::kPassthrough) {
      w.op = c.op;
      w.key = c.new_values;         // the SQL
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
  void append(std::int64_t epoch, WireChange w) {
    if (payload_.epochs.empty() || payload_.epochs.back().epoch != epoch) {
      payload_.epochs.push_back(EpochBlock{epoch, {}});
    }
    payload_.epochs.back().changes.push_back(std::move(w));
  }

  std::uint32_t table_index(const CaptureLayout& layout) {
    const auto found = index_.find(layout.id);
    if (found != index_.end()) {
      return found->second;
    }
    const auto index = static_cast<std::uint32_t>(payload_.tables.size());
    payload_.tables.push_back(TableBlock{layout.table, layout.columns, layout.key_count});
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

  Payload& payload_;
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
  std::string text = c.table();
  text += '\x1f';
  for (const auto& v : key) {
    text += v.debug_string();
    text += ',';
  }
  text += '\x1f';
  text += column;
  return text;
}

Result<SupersededBy> partner_changes(Database& db, const Partner& partner, std::int64_t after_epoch,
                                     std::int64_t upto_epoch, const std::set<std::string>& tables) {
  SupersededBy last;
  SQLPOST_TRY(read_changes(db, after_epoch, upto_epoch, tables, [&](const Change& c) {
    if (c.origin != partner.name) {
      return success();
    }
    const Row key = c.key();
    if (c.op == ChangeOp::kDelete) {
      // A child's later delete makes earlier changes of the row stale for it (they
      // would bring it back). Towards the parent they still go: it decides, and
      // records what it could not apply.
      if (partner.relation == Relation::kChild) {
        last[column_key(c, key, "-")] = Superseding{c.seq, {}};
      }
      return success();
    }
    if (c.op == ChangeOp::kInsert) {
      last[column_key(c, key, "*")] = Superseding{c.seq, {}};
      return success();
    }
    for (const auto i : c.changed_columns()) {
      last[column_key(c, key, c.layout->columns[i])] = Superseding{c.seq, c.new_values[i]};
    }
    return success();
  }));
  return last;
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
Result<> route_subset(Database& db, const SubsetFilter& subset, const Partner& partner,
                      const Change& c, const SupersededBy& later, PayloadBuilder& builder) {
  const bool own = c.origin == partner.name;
  if (c.op == ChangeOp::kInsert) {
    SQLPOST_TRY_ASSIGN(const auto in, subset.contains(db, *c.layout, c.new_values));
    if (!own && in == true) {
      builder.add(without_superseded(c, later));
    } else if (own && in != true) {  // the partner wrote a row outside its subset
      Change removal = c;
      removal.op = ChangeOp::kDelete;
      removal.old_values = c.new_values;
      removal.new_values.clear();
      builder.add(removal);
    }
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto was_in, subset.contains(db, *c.layout, c.old_values));
  if (c.op == ChangeOp::kDelete) {
    if (!own && was_in != false) {  // unknown (a dependent row's parent is gone): send it
      builder.add(c);
    }
    return success();
  }
  SQLPOST_TRY_ASSIGN(const auto is_in, subset.contains(db, *c.layout, c.new_values));
  if (was_in == true && is_in != true) {
    builder.add(as_delete(c));  // leaves the subset, whoever moved it
  } else if (was_in != true && is_in == true) {
    // Entering: also when the partner itself moved the row back in, since the delete
    // its earlier move out brought may have removed it there meanwhile.
    builder.add(without_superseded(as_insert(c), later));
  } else if (!own && was_in == true && is_in == true) {
    builder.add(without_superseded(c, later));
  }
  return success();
}

}  // namespace

Result<Payload> collect_changes_for(Database& db, const Partner& partner, std::int64_t after_epoch,
                                    std::int64_t upto_epoch) {
  Payload payload;
  SQLPOST_TRY_ASSIGN(const auto tables, tables_routed_to(db, partner));
  if (tables.empty() || upto_epoch <= after_epoch) {
    return payload;
  }
  SQLPOST_TRY_ASSIGN(const SupersededBy superseded,
                     partner_changes(db, partner, after_epoch, upto_epoch, tables));
  SQLPOST_TRY_ASSIGN(const SubsetFilter subset, SubsetFilter::load(db, partner));
  PayloadBuilder builder(payload);
  SQLPOST_TRY(read_changes(db, after_epoch, upto_epoch, tables, [&](const Change& c) {
    if (c.origin == kPassthroughOrigin) {
      return success();
    }
    if (c.op == ChangeOp::kPassthrough) {
      if (c.origin != partner.name && passthrough_goes_to(c, partner)) {
        builder.add(c);
      }
      return success();
    }
    if (!subset.whole(c.table())) {
      if (deleted_later_by_partner(c, superseded)) {
        return success();
      }
      return route_subset(db, subset, partner, c, superseded, builder);
    }
    if (c.origin == partner.name) {
      return success();
    }
    if (superseded.empty()) {
      builder.add(c);
    } else {
      builder.add(without_superseded(c, superseded));
    }
    return success();
  }));
  return payload;
}

}  // namespace sqlpost
