// sqlpost/agent/status.h — `sqlpost status`: the site, its publications and
// partners, and what each partner still has to receive.
//
// Contract: read-only; builds a JSON document (the --json output) and renders
// the same facts as text. Secrets are never included.
#pragma once

#include <nlohmann/json.hpp>

#include "schema/db.h"

namespace sqlpost {

Result<nlohmann::json> collect_status(Database& db);
std::string render_status_text(const nlohmann::json& status);

}  // namespace sqlpost
