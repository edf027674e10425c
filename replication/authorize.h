// sqlpost/replication/authorize.h — what a partner may change at this site.
//
// Contract: the grant is decided from the receiving site's own metadata, never
// from the message. A parent may change the tables and columns of every article
// this site has (a remote's articles are the ones it subscribes to); a child may
// change the tables and columns of the articles of the publications it
// subscribes to here. An article without a column list grants every column of
// its table (including columns passthrough SQL adds later). check_block()
// refuses a table block that names a table or column outside the grant with
// Errc::kAuthentication ("not authorized ..."): the caller refuses the whole
// message and stops that partner's stream. Rows: see docs/security.md and
// apply.h (a child changes only rows it holds).
#pragma once

#include <map>
#include <set>
#include <string>

#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

struct TableGrant {
  bool every_column = false;
  std::set<std::string> columns;  // when !every_column
};

struct Authorization {
  std::string partner;
  bool from_parent = false;
  std::map<std::string, TableGrant> tables;

  // Ok when every column the block names (key columns included) is granted.
  [[nodiscard]] Result<> check_block(const TableBlock& block) const;
};

Result<Authorization> authorization_for(Database& db, const Partner& partner);

}  // namespace sqlpost
