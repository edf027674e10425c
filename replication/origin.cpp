#include "replication/origin.h"

namespace sqlpost {

Result<OriginMark> OriginMark::set(Database& db, std::string_view origin) {
  if (!db.in_transaction()) {
    return make_error(Errc::kInternal, "an origin mark needs an open transaction");
  }
  SQLPOST_TRY(db.exec("DELETE FROM sqlpost_context"));
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("INSERT INTO sqlpost_context(origin) VALUES (?)"));
  st.bind(1, origin);
  SQLPOST_TRY(st.run());
  return OriginMark(&db);
}

OriginMark::OriginMark(OriginMark&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }

OriginMark::~OriginMark() {
  if (db_ != nullptr && db_->in_transaction()) {
    (void)db_->exec("DELETE FROM sqlpost_context");
  }
}

Result<> OriginMark::clear() {
  Database* db = db_;
  db_ = nullptr;
  return db->exec("DELETE FROM sqlpost_context");
}

}  // namespace sqlpost
