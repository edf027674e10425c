#include "replication/routing.h"

#include <map>

#include "replication/changelog.h"

namespace sqlpost {
namespace {

class PayloadBuilder {
 public:
  explicit PayloadBuilder(Payload& payload) : payload_(payload) {}

  void add(const Change& c) {
    WireChange w;
    if (!to_wire(c, w)) {
      return;
    }
    w.table = table_index(*c.layout);
    if (payload_.epochs.empty() || payload_.epochs.back().epoch != c.epoch) {
      payload_.epochs.push_back(EpochBlock{c.epoch, {}});
    }
    payload_.epochs.back().changes.push_back(std::move(w));
  }

 private:
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

}  // namespace

Result<Payload> collect_changes_for(Database& db, const Partner& partner, std::int64_t after_epoch,
                                    std::int64_t upto_epoch) {
  Payload payload;
  SQLPOST_TRY_ASSIGN(const auto tables, tables_routed_to(db, partner));
  if (tables.empty() || upto_epoch <= after_epoch) {
    return payload;
  }
  PayloadBuilder builder(payload);
  SQLPOST_TRY(read_changes(db, after_epoch, upto_epoch, tables, [&](const Change& c) {
    if (c.origin != partner.name) {
      builder.add(c);
    }
    return success();
  }));
  return payload;
}

}  // namespace sqlpost
