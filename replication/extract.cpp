#include "replication/extract.h"

#include <algorithm>
#include <array>
#include <filesystem>
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

// The table as at the hub, without the columns it does not publish, then its indexes
// (an index on a dropped column is left out).
Result<> create_table(Database& hub, Database& out, const std::string& table) {
  SQLPOST_TRY_ASSIGN(const auto statements, table_schema_statements(hub, table));
  SQLPOST_TRY(out.exec(statements.front()));
  SQLPOST_TRY_ASSIGN(const auto dropped, drop_unpublished(hub, out, table));
  for (std::size_t i = 1; i < statements.size(); ++i) {
    auto created = out.exec(statements[i]);
    if (!created.ok() && dropped.empty()) {
      return created;
    }
  }
  return success();
}

// The rows of `table` the site subscribes to (`filter`: SubsetFilter::row_filter).
Result<std::size_t> copy_rows(Database& hub, Database& out, const std::string& table,
                              const std::string& filter) {
  SQLPOST_TRY_ASSIGN(const CaptureLayout layout, capture_layout_for(hub, table));
  std::string published;  // only the captured columns leave the hub
  for (const auto& column : layout.columns) {
    published += (published.empty() ? "" : ", ") + quote_identifier(column);
  }
  auto prepared =
      hub.prepare("SELECT " + published + " FROM " + quote_identifier(table) + " WHERE " + filter);
  if (!prepared.ok()) {
    return make_error(Errc::kConfig, "the subset of '" + table + "' cannot be selected (" +
                                         prepared.error().message +
                                         "); check the article's --where / --subscribe-by");
  }
  Statement read = std::move(prepared).value();
  const int n = read.column_count();
  std::string params;
  for (int i = 0; i < n; ++i) {
    params += i == 0 ? "?" : ", ?";
  }
  std::string names;
  for (int i = 0; i < n; ++i) {
    names += (i == 0 ? "" : ", ") + quote_identifier(read.column_name(i));
  }
  SQLPOST_TRY_ASSIGN(Statement write, out.prepare("INSERT INTO " + quote_identifier(table) + " (" +
                                                  names + ") VALUES (" + params + ")"));
  std::size_t rows = 0;
  for (;;) {
    SQLPOST_TRY_ASSIGN(const bool row, read.step());
    if (!row) {
      break;
    }
    for (int i = 0; i < n; ++i) {
      write.bind(i + 1, read.column(i));
    }
    SQLPOST_TRY(write.run());
    ++rows;
  }
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
  for (const auto& table : tables) {
    SQLPOST_TRY(create_table(hub, out, table));
    SQLPOST_TRY_ASSIGN(const std::size_t rows,
                       copy_rows(hub, out, table, subset.row_filter(table)));
    summary.rows += rows;
    ++summary.tables;
  }
  SQLPOST_TRY(write_remote_metadata(hub, out, parent, partner, articles));
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
    SQLPOST_TRY_ASSIGN(Transaction out_tx, Transaction::begin(out));
    SQLPOST_TRY_ASSIGN(ExtractSummary s, fill(db, out, site));
    SQLPOST_TRY(out_tx.commit());
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
