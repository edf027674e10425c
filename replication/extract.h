// sqlpost/replication/extract.h — making a remote site's starting database.
//
// Contract: extract_site() writes a new SQLite file at `output` (refusing to
// overwrite; created mode 0600 because it holds the site's key) holding: the
// tables of the publications `site` subscribes to (their exact CREATE TABLE and
// CREATE INDEX statements) and their rows, the sqlpost tables with the remote's
// identity (role remote, parent = this site), the parent as its partner with the
// pair's key, the same articles (so its own changes are captured), and the
// non-secret link parameters. Everything is read while one write transaction on
// the consolidated database closes an epoch and sets the site's send position to
// it (the rows through a second, reading connection that attaches the new file:
// docs/protocol.md, "Extraction"), so every change is either in the file or sent
// later — never both, never neither. Re-extracting a site resets its delivery state.
#pragma once

#include <string>

#include "schema/db.h"

namespace sqlpost {

struct ExtractSummary {
  std::size_t tables = 0;
  std::size_t rows = 0;
  std::int64_t epoch = 0;  // the remote receives changes of later epochs
};

Result<ExtractSummary> extract_site(Database& db, const std::string& site,
                                    const std::string& output);

}  // namespace sqlpost
