#include "replication/extract.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <set>

#include "platform/files.h"
#include "replication/changelog.h"
#include "replication/keys.h"
#include "replication/subsets.h"
#include "schema/capture.h"
#include "schema/introspect.h"
#include "schema/metadata.h"
#include "schema/migrations.h"

namespace sqlpost {
namespace {

// Non-secret control parameters a remote inherits from its parent.
// What a new remote inherits from its parent: how mail travels and which servers
// (usually one provider); never accounts, passwords or local file paths.
constexpr std::array<std::string_view, 20> kInheritedConfig = {
    "link",      "file.dir",      "max_message_bytes", "resend_timeout", "gap_patience",
    "smtp.host", "smtp.port",     "smtp.security",     "receive",        "pop3.host",
    "pop3.port", "pop3.security", "imap.host",         "imap.port",      "imap.security",
    "timeout",   "ftp.host",      "ftp.port",          "ftp.security",   "ftp.dir"};

Result<std::string> create_private_file(const std::string& output) {
  std::error_code ec;
  if (std::filesystem::exists(output, ec)) {
    return make_error(Errc::kAlreadyExists, output + " exists; extract never overwrites a file");
  }
  const std::string temp = output + ".partial";
  SQLPOST_TRY_ASSIGN(platform::File file, platform::File::create_new(temp));
  SQLPOST_TRY(file.close());
  return temp;
}

// Drops the columns a column subset leaves out, where SQLite allows it (not for a
// column an index, a constraint or a generated column uses: that one stays, empty).
Result<std::set<std::string>> drop_unpublished(Database& hub, Database& out,
                                               const std::string& table) {
  SQLPOST_TRY_ASSIGN(const CaptureLayout layout, capture_layout_for(hub, table));
  SQLPOST_TRY_ASSIGN(const TableInfo info, describe_table(hub, table));
  std::set<std::string> dropped;
  for (const auto& c : info.columns) {
    const bool published =
        std::find(layout.columns.begin(), layout.columns.end(), c.name) != layout.columns.end();
    if (published || c.generated) {
      continue;
    }
    if (out.exec("ALTER TABLE " + quote_identifier(table) + " DROP COLUMN " +
                 quote_identifier(c.name))
            .ok()) {
      dropped.insert(c.name);
    }
  }
  return dropped;
}

// The table as at the hub, without the columns it does not publish; returns what
// creates its indexes, run once the rows are in (cheaper than keeping them up to date
// row by row).
Result<std::vector<std::string>> create_table(Database& hub, Database& out,
                                              const std::string& table) {
  SQLPOST_TRY_ASSIGN(auto statements, table_schema_statements(hub, table));
  SQLPOST_TRY(out.exec(statements.front()));
  SQLPOST_TRY_ASSIGN(const auto dropped, drop_unpublished(hub, out, table));
  if (!dropped.empty()) {
    statements.front().clear();  // marks that an index on a dropped column is left out
  }
  return statements;
}

// The indexes of the tables made by create_table() (an index on a column dropped
// there is left out).
Result<> create_indexes(Database& out, const std::vector<std::string>& statements) {
  const bool columns_dropped = statements.front().empty();
  for (std::size_t i = 1; i < statements.size(); ++i) {
    auto created = out.exec(statements[i]);
    if (!created.ok() && !columns_dropped) {
      return created;
    }
  }
  return success();
}

// Copies the rows the site subscribes to into the new file in one statement per
// table (`filters`: table -> SubsetFilter::row_filter). A connection of its own opens
// the hub as `main`, so that the unqualified names in --where and --subscribe-by
// subqueries mean the hub's tables, and attaches the new file: its transaction writes
// only the new file. The hub connection holds the write lock meanwhile (the epoch is
// cut, not committed), so the rows read are those the cut covers.
Result<std::size_t> copy_rows(Database& hub, const std::string& file,
                              const std::map<std::string, std::string>& filters) {
  SQLPOST_TRY_ASSIGN(Database copier, Database::open(hub.path(), Database::Mode::kReadWrite));
  SQLPOST_TRY_ASSIGN(Statement attach, copier.prepare("ATTACH ?1 AS sqlpost_new"));
  attach.bind(1, file);
  SQLPOST_TRY(attach.run());
  // The file is not published before the last transaction on it, made with the
  // default durability, has committed: no journal for the bulk copy.
  SQLPOST_TRY(copier.exec("PRAGMA sqlpost_new.journal_mode = OFF"));
  SQLPOST_TRY(copier.exec("PRAGMA sqlpost_new.synchronous = OFF"));
  SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(copier, Transaction::Kind::kDeferred));
  std::size_t rows = 0;
  for (const auto& [table, filter] : filters) {
    SQLPOST_TRY_ASSIGN(const CaptureLayout layout, capture_layout_for(hub, table));
    std::string published;  // only the captured columns leave the hub
    for (const auto& column : layout.columns) {
      published += (published.empty() ? "" : ", ") + quote_identifier(column);
    }
    const std::string name = quote_identifier(table);
    std::string sql = "INSERT INTO sqlpost_new." + name;
    sql.append(" (").append(published).append(") SELECT ").append(published);
    sql.append(" FROM main.").append(name).append(" WHERE ").append(filter);
    auto copied = copier.exec(sql);
    if (!copied.ok()) {
      return make_error(Errc::kConfig, "the subset of '" + table + "' cannot be copied (" +
                                           copied.error().message +
                                           "); check the article's --where / --subscribe-by");
    }
    rows += static_cast<std::size_t>(copier.changes());
  }
  SQLPOST_TRY(tx.commit());
  return rows;
}

Result<std::vector<Article>> subscribed_articles(Database& hub, const std::string& site) {
  SQLPOST_TRY_ASSIGN(const auto subs, load_subscriptions(hub));
  std::set<std::string> pubs;
  for (const auto& s : subs) {
    if (s.site == site) {
      pubs.insert(s.publication);
    }
  }
  SQLPOST_TRY_ASSIGN(auto articles, load_articles(hub));
  std::vector<Article> mine;
  for (auto& a : articles) {
    if (pubs.count(a.publication) > 0) {
      mine.push_back(std::move(a));
    }
  }
  return mine;
}

Result<> write_remote_metadata(Database& hub, Database& out, const LocalSite& parent,
                               const Partner& site, const std::vector<Article>& articles) {
  SQLPOST_TRY(create_site_tables(out));
  SQLPOST_TRY(init_site(out, LocalSite{site.name, site.address, Role::kRemote, parent.name}));
  SQLPOST_TRY(
      add_partner(out, Partner{parent.name, parent.address, Relation::kParent, site.key, 0}));
  for (const auto& a : articles) {
    SQLPOST_TRY(publish(out, a));
  }
  for (const auto key : kInheritedConfig) {
    SQLPOST_TRY_ASSIGN(const auto value, get_config(hub, key));
    if (value) {
      SQLPOST_TRY(set_config(out, key, *value));
    }
  }
  // Key ranges: the slot the parent gave this site, and its first block seeded.
  SQLPOST_TRY_ASSIGN(const auto keys, get_config(hub, "keys"));
  SQLPOST_TRY_ASSIGN(const auto slot, get_config(hub, child_slot_config(site.name)));
  if (keys) {
    SQLPOST_TRY(set_config(out, "keys", *keys));
  }
  if (slot) {
    SQLPOST_TRY(set_config(out, kKeySlotConfig, *slot));
  }
  return seed_key_ranges(out);
}

Result<> reset_delivery_state(Database& hub, const std::string& site, std::int64_t epoch) {
  SQLPOST_TRY(delete_delivery_state(hub, site));
  SQLPOST_TRY_ASSIGN(Statement st,
                     hub.prepare("UPDATE sqlpost_sites SET sent_epoch = ? WHERE name = ?"));
  st.bind(1, epoch).bind(2, site);
  return st.run();
}

Result<ExtractSummary> fill(Database& hub, Database& out, const std::string& site) {
  SQLPOST_TRY_ASSIGN(const LocalSite parent, load_local_site(hub));
  SQLPOST_TRY_ASSIGN(const Partner partner, load_partner(hub, site));
  if (partner.relation != Relation::kChild) {
    return make_error(Errc::kInvalidArgument, "site '" + site + "' is not a child of this site");
  }
  SQLPOST_TRY_ASSIGN(const auto articles, subscribed_articles(hub, site));
  if (articles.empty()) {
    return make_error(Errc::kInvalidArgument, "site '" + site + "' subscribes to nothing yet");
  }
  ExtractSummary summary;
  SQLPOST_TRY_ASSIGN(summary.epoch, close_epoch_in_transaction(hub));
  std::set<std::string> tables;
  for (const auto& a : articles) {
    tables.insert(a.table);
  }
  SQLPOST_TRY_ASSIGN(const SubsetFilter subset, SubsetFilter::load(hub, partner));
  std::map<std::string, std::string> filters;
  std::vector<std::vector<std::string>> indexes;
  for (const auto& table : tables) {
    SQLPOST_TRY_ASSIGN(auto statements, create_table(hub, out, table));
    indexes.push_back(std::move(statements));
    filters[table] = subset.row_filter(table);
  }
  SQLPOST_TRY_ASSIGN(summary.rows, copy_rows(hub, out.path(), filters));
  summary.tables = tables.size();
  SQLPOST_TRY_ASSIGN(Transaction out_tx, Transaction::begin(out));
  for (const auto& statements : indexes) {
    SQLPOST_TRY(create_indexes(out, statements));
  }
  SQLPOST_TRY(write_remote_metadata(hub, out, parent, partner, articles));
  SQLPOST_TRY(out_tx.commit());
  SQLPOST_TRY(reset_delivery_state(hub, site, summary.epoch));
  return summary;
}

}  // namespace

Result<ExtractSummary> extract_site(Database& db, const std::string& site,
                                    const std::string& output) {
  SQLPOST_TRY_ASSIGN(const std::string temp, create_private_file(output));
  auto cleanup = [&temp] { std::filesystem::remove(temp); };
  auto opened = Database::open(temp, Database::Mode::kReadWrite);
  if (!opened.ok()) {
    cleanup();
    return opened.take_error();
  }
  Result<ExtractSummary> summary = [&]() -> Result<ExtractSummary> {
    Database out = std::move(opened).value();
    SQLPOST_TRY_ASSIGN(Transaction hub_tx, Transaction::begin(db));
    SQLPOST_TRY_ASSIGN(ExtractSummary s, fill(db, out, site));
    // The file is complete and closed before the hub commits its new position.
    SQLPOST_TRY(platform::link_new(temp, output));
    auto committed = hub_tx.commit();
    if (!committed.ok()) {
      std::filesystem::remove(output);
      return committed.take_error();
    }
    return s;
  }();
  cleanup();
  return summary;
}

}  // namespace sqlpost
