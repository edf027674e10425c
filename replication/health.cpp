#include "replication/health.h"

#include <nlohmann/json.hpp>

#include "schema/metadata.h"

namespace sqlpost {
namespace {

using json = nlohmann::json;

Result<std::vector<std::pair<std::string, std::string>>> halted_streams(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st, db.prepare("SELECT site, halted FROM sqlpost_streams WHERE "
                                              "ifnull(halted, '') <> '' ORDER BY site LIMIT ?"));
  st.bind(1, static_cast<std::int64_t>(kMaxHealthHalted));
  return st.rows([](const Statement& row) {
    return std::pair{row.column_text(0), row.column_text(1).substr(0, kMaxHealthText)};
  });
}

std::string halted_text(const SiteHealth& h) {
  json list = json::array();
  for (const auto& [partner, why] : h.halted) {
    list.push_back(json::array({partner, why}));
  }
  return list.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<std::pair<std::string, std::string>> halted_from_text(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  const json list = json::parse(text, nullptr, false);
  if (!list.is_array()) {
    return out;  // damaged: shown as nothing stopped rather than failing status
  }
  for (const auto& entry : list) {
    if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string()) {
      out.emplace_back(entry[0].get<std::string>(), entry[1].get<std::string>());
    }
  }
  return out;
}

Result<> keep(Database& db, const SiteHealth& h, const std::string& via, std::int64_t now) {
  SQLPOST_TRY_ASSIGN(Statement * st,
                     db.cached("INSERT OR REPLACE INTO sqlpost_site_health(site, via, "
                               "received_at, version, reported_at, conflicts, rejected, "
                               "outbox_oldest, halted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st->bind(1, h.site).bind(2, via).bind(3, now).bind(4, h.version).bind(5, h.reported_at);
  st->bind(6, h.conflicts).bind(7, h.rejected).bind(8, h.outbox_oldest).bind(9, halted_text(h));
  return st->run();
}

Result<std::set<std::string>> not_descendants(Database& db) {
  SQLPOST_TRY_ASSIGN(const LocalSite local, load_local_site(db));
  SQLPOST_TRY_ASSIGN(const auto partners, load_partners(db));
  std::set<std::string> names{local.name};
  for (const auto& p : partners) {
    names.insert(p.name);
  }
  return names;
}

}  // namespace

Result<std::vector<SiteHealth>> local_health(Database& db, const std::string& site,
                                             const std::string& version, std::int64_t now) {
  SiteHealth own;
  own.site = site;
  own.version = version;
  own.reported_at = now;
  SQLPOST_TRY_ASSIGN(own.conflicts, db.query_int("SELECT count(*) FROM sqlpost_conflicts"));
  SQLPOST_TRY_ASSIGN(own.rejected, db.query_int("SELECT count(*) FROM sqlpost_rejected"));
  SQLPOST_TRY_ASSIGN(own.outbox_oldest,
                     db.query_int("SELECT ifnull(min(created_at), 0) FROM sqlpost_outbox"));
  SQLPOST_TRY_ASSIGN(own.halted, halted_streams(db));
  std::vector<SiteHealth> records{std::move(own)};
  SQLPOST_TRY_ASSIGN(const auto below, load_hierarchy(db));
  for (const auto& stored : below) {
    if (records.size() >= kMaxHealthRecords) {
      break;
    }
    records.push_back(stored.health);
  }
  return records;
}

Result<> store_health(Database& db, const std::string& child,
                      const std::vector<SiteHealth>& records, std::int64_t now) {
  if (records.empty() || records.front().site != child) {
    return success();
  }
  // The child's report replaces what it reported before, so a child that names new
  // sites every time cannot grow the table: at most kMaxHealthRecords rows per child.
  SQLPOST_TRY_ASSIGN(Statement * forget,
                     db.cached("DELETE FROM sqlpost_site_health WHERE via = ?"));
  forget->bind(1, child);
  SQLPOST_TRY(forget->run());
  SQLPOST_TRY(keep(db, records.front(), child, now));
  SQLPOST_TRY_ASSIGN(const auto excluded, not_descendants(db));
  for (std::size_t i = 1; i < records.size(); ++i) {
    if (excluded.count(records[i].site) == 0) {
      SQLPOST_TRY(keep(db, records[i], child, now));
    }
  }
  return success();
}

Result<std::vector<StoredHealth>> load_hierarchy(Database& db) {
  SQLPOST_TRY_ASSIGN(Statement st,
                     db.prepare("SELECT site, via, received_at, version, reported_at, conflicts, "
                                "rejected, outbox_oldest, halted FROM sqlpost_site_health ORDER "
                                "BY via, site = via DESC, site LIMIT ?"));
  st.bind(1, static_cast<std::int64_t>(kMaxHealthRecords));
  std::vector<StoredHealth> out;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, st.step());
    if (!row) {
      return out;
    }
    StoredHealth s;
    s.health.site = st.column_text(0);
    s.health.via = st.column_text(1);
    s.received_at = st.column_int(2);
    s.health.version = st.column_text(3);
    s.health.reported_at = st.column_int(4);
    s.health.conflicts = st.column_int(5);
    s.health.rejected = st.column_int(6);
    s.health.outbox_oldest = st.column_int(7);
    s.health.halted = halted_from_text(st.column_text(8));
    out.push_back(std::move(s));
  }
}

}  // namespace sqlpost
