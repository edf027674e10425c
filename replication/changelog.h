// sqlpost/replication/changelog.h — reading the change log by epochs.
//
// Contract: cut_epoch() closes the current epoch in its own write transaction
// (UPDATE sqlpost_epoch SET epoch = epoch + 1) and records the last log
// sequence of every closed epoch (sqlpost_epoch_marks). Because every
// application transaction holds SQLite's write lock from its first write to its
// commit, each epoch is a set of whole committed transactions once it is closed.
// read_changes() yields the changes of closed epochs (after, upto] for the given
// tables, in commit order, with new and old values of the captured columns. An
// UPDATE that changes a primary key is yielded as a DELETE of the old key
// followed by an INSERT of the new row. Do not call cut_epoch() inside an open
// transaction.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "schema/capture.h"
#include "schema/db.h"

namespace sqlpost {

struct Change {
  std::int64_t seq = 0;
  std::int64_t epoch = 0;
  ChangeOp op = ChangeOp::kInsert;
  std::string origin;  // empty: written locally, else the site whose message was applied
  std::shared_ptr<const CaptureLayout> layout;
  Row new_values;  // insert/update: every captured column; delete: empty
  Row old_values;  // update/delete: every captured column; insert: empty

  [[nodiscard]] const std::string& table() const { return layout->table; }
  [[nodiscard]] Row key() const;  // key values (new image, or old for deletes)
  // Indexes of captured columns whose value differs between old and new.
  [[nodiscard]] std::vector<std::size_t> changed_columns() const;
};

// Closes the current epoch; returns the number of the epoch just closed.
// `now` (seconds) is recorded as its closing time (-1: the system clock).
Result<std::int64_t> cut_epoch(Database& db, std::int64_t now = -1);

// The agent's cut: closes the current epoch when something was logged since the
// last close; otherwise writes nothing and returns the last closed epoch (an idle
// pass must not cost a transaction; a row logged meanwhile is in the next cut).
Result<std::int64_t> cut_epoch_if_logged(Database& db, std::int64_t now = -1);

// The same inside the caller's write transaction (used by extraction).
Result<std::int64_t> close_epoch_in_transaction(Database& db, std::int64_t now = -1);

// The highest closed epoch (0 when none was closed yet).
Result<std::int64_t> last_closed_epoch(Database& db);
// When the first epoch after `epoch` was closed (0: none closed yet), for send
// schedules (replication/send_schedule.h).
Result<std::int64_t> first_closed_at_after(Database& db, std::int64_t epoch);

// The last log sequence belonging to closed epoch `epoch` or earlier.
Result<std::int64_t> epoch_end_seq(Database& db, std::int64_t epoch);

using ChangeVisitor = std::function<Result<>(const Change&)>;

// Visits changes of epochs (after_epoch, upto_epoch] whose table is in `tables`
// (every table when `tables` is empty), in commit order.
// The distinct origins ("" for this site's own changes) of the closed epochs
// (after, upto]: one pass over the range that keeps nothing per row.
Result<std::set<std::string>> origins_between(Database& db, std::int64_t after_epoch,
                                              std::int64_t upto_epoch);
Result<> read_changes(Database& db, std::int64_t after_epoch, std::int64_t upto_epoch,
                      const std::set<std::string>& tables, const ChangeVisitor& visit);
// The same for every change after `after_epoch`, the open epoch included.
Result<> read_changes_since(Database& db, std::int64_t after_epoch,
                            const std::set<std::string>& tables, const ChangeVisitor& visit);

}  // namespace sqlpost

namespace sqlpost {
struct Partner;

// Tables whose changes go to `partner`: for a child, the tables of the
// publications it subscribes to; for the parent, every published table.
Result<std::set<std::string>> tables_routed_to(Database& db, const Partner& partner);

// Captured changes (closed or not) after the partner's sent position that are
// routed to it and did not come from it.
Result<std::int64_t> count_unsent_changes(Database& db, const Partner& partner);
}  // namespace sqlpost
