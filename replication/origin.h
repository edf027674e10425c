// sqlpost/replication/origin.h — marking the agent's own apply transactions.
//
// Contract: while an OriginMark is alive inside a write transaction, every row
// the capture triggers log carries `origin` (the partner whose message is being
// applied). The mark is one row in sqlpost_context written inside the caller's
// transaction and deleted by clear() before the caller commits, so other
// connections never see it. Non-TEMP triggers cannot read TEMP tables, hence a
// main-schema table.
#pragma once

#include <string>

#include "schema/db.h"

namespace sqlpost {

class OriginMark {
 public:
  // Requires an open write transaction on db.
  static Result<OriginMark> set(Database& db, std::string_view origin);
  OriginMark(OriginMark&& other) noexcept;
  OriginMark& operator=(OriginMark&&) = delete;
  OriginMark(const OriginMark&) = delete;
  OriginMark& operator=(const OriginMark&) = delete;
  ~OriginMark();

  // Removes the mark; call before committing.
  Result<> clear();

 private:
  explicit OriginMark(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace sqlpost
