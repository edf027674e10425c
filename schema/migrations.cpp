#include "schema/migrations.h"

#include <array>
#include <string_view>

namespace sqlpost {
namespace {

// Migration N (1-based) brings the schema from version N-1 to N. Never edit a
// released migration: append a new one.
constexpr std::array<std::string_view, kSchemaVersion> kMigrations = {
    R"sql(
CREATE TABLE sqlpost_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE sqlpost_local(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  site TEXT NOT NULL,
  address TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('consolidated', 'remote')),
  parent TEXT);
CREATE TABLE sqlpost_sites(
  name TEXT PRIMARY KEY,
  address TEXT NOT NULL,
  relation TEXT NOT NULL CHECK (relation IN ('child', 'parent')),
  key BLOB NOT NULL,
  created_at INTEGER NOT NULL DEFAULT (unixepoch()),
  sent_epoch INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE sqlpost_publications(name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE sqlpost_articles(
  publication TEXT NOT NULL REFERENCES sqlpost_publications(name),
  table_name TEXT NOT NULL,
  columns TEXT,
  where_expr TEXT,
  subscribe_by TEXT,
  conflict TEXT NOT NULL DEFAULT 'incoming',
  PRIMARY KEY (publication, table_name)) WITHOUT ROWID;
CREATE TABLE sqlpost_subscriptions(
  site TEXT NOT NULL REFERENCES sqlpost_sites(name),
  publication TEXT NOT NULL REFERENCES sqlpost_publications(name),
  value TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (site, publication, value)) WITHOUT ROWID;
CREATE TABLE sqlpost_config(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sqlpost_epoch(id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);
INSERT INTO sqlpost_epoch VALUES (1, 1);
CREATE TABLE sqlpost_epoch_marks(
  epoch INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  closed_at INTEGER NOT NULL DEFAULT (unixepoch()));
INSERT INTO sqlpost_epoch_marks(epoch, last_seq) VALUES (0, 0);
CREATE TABLE sqlpost_context(origin TEXT NOT NULL);
CREATE TABLE sqlpost_layouts(
  id INTEGER PRIMARY KEY,
  table_name TEXT NOT NULL,
  columns TEXT NOT NULL,
  pk_count INTEGER NOT NULL);
CREATE TABLE sqlpost_log(
  seq INTEGER PRIMARY KEY,
  epoch INTEGER NOT NULL,
  layout INTEGER NOT NULL,
  op INTEGER NOT NULL,
  origin TEXT);
)sql",
    // 2: delivery state per partner, outbox, inbox, rejected mail, foreign mail.
    R"sql(
CREATE TABLE sqlpost_streams(
  site TEXT PRIMARY KEY,
  next_seq INTEGER NOT NULL DEFAULT 1,
  acked_seq INTEGER NOT NULL DEFAULT 0,
  applied_seq INTEGER NOT NULL DEFAULT 0,
  ack_owed INTEGER NOT NULL DEFAULT 0,
  gap_since INTEGER,
  resend_requested_at INTEGER,
  resend_from INTEGER,
  last_sent_at INTEGER,
  last_received_at INTEGER,
  rejected INTEGER NOT NULL DEFAULT 0,
  halted TEXT) WITHOUT ROWID;
CREATE TABLE sqlpost_outbox(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  parts INTEGER NOT NULL,
  mail BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  sent_count INTEGER NOT NULL DEFAULT 0,
  last_sent_at INTEGER,
  PRIMARY KEY (site, seq, part)) WITHOUT ROWID;
CREATE TABLE sqlpost_sent(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  from_epoch INTEGER NOT NULL,
  to_epoch INTEGER NOT NULL,
  PRIMARY KEY (site, seq)) WITHOUT ROWID;
CREATE TABLE sqlpost_inbox(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  parts INTEGER NOT NULL,
  mail BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (site, seq, part)) WITHOUT ROWID;
CREATE TABLE sqlpost_rejected(
  id INTEGER PRIMARY KEY,
  received_at INTEGER NOT NULL,
  claimed_sender TEXT,
  reason TEXT NOT NULL,
  mail BLOB);
CREATE TABLE sqlpost_foreign_mail(
  mail_id TEXT PRIMARY KEY,
  seen_at INTEGER NOT NULL) WITHOUT ROWID;
)sql",
    // 3: conflicts, one row per conflicting column (or per failed change); values are
    // stored as they are (no affinity), resolved_value may be changed by a user trigger.
    R"sql(
CREATE TABLE sqlpost_conflicts(
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  table_name TEXT NOT NULL,
  row_key TEXT NOT NULL,
  kind TEXT NOT NULL,
  column_name TEXT,
  local_value,
  old_value,
  incoming_value,
  resolved_value,
  from_site TEXT NOT NULL,
  local_site TEXT NOT NULL,
  policy TEXT NOT NULL,
  outcome TEXT NOT NULL,
  detail TEXT);
-- Rows a deciding site sends back to the origin of a conflicting change with its next
-- message: one row per key value (position 0..), values stored exactly.
CREATE TABLE sqlpost_bounce(
  site TEXT NOT NULL,
  table_name TEXT NOT NULL,
  row_key TEXT NOT NULL,
  position INTEGER NOT NULL,
  value,
  PRIMARY KEY (site, table_name, row_key, position)) WITHOUT ROWID;
-- The acknowledgement carried by the last message applied in order from a partner:
-- what the parent had seen of this site when it built that message. Changes after
-- it stay in the log (a parent's older change of them is skipped on apply).
ALTER TABLE sqlpost_streams ADD COLUMN seen_ack INTEGER NOT NULL DEFAULT 0;
)sql",
    // 4: history an administrator reads (sqlpost log, sqlpost stats), pruned by the agent
    // after history_retention / stats_retention: one row per agent pass, one per message or
    // part event, and per partner per UTC day the traffic both ways.
    R"sql(
CREATE TABLE sqlpost_runs(
  id INTEGER PRIMARY KEY,
  started_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  mode TEXT NOT NULL,
  outcome TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  parts_received INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0,
  messages_applied INTEGER NOT NULL DEFAULT 0,
  changes_applied INTEGER NOT NULL DEFAULT 0,
  messages_prepared INTEGER NOT NULL DEFAULT 0,
  parts_sent INTEGER NOT NULL DEFAULT 0,
  acks_sent INTEGER NOT NULL DEFAULT 0,
  send_failures INTEGER NOT NULL DEFAULT 0,
  message TEXT);
CREATE INDEX sqlpost_runs_started ON sqlpost_runs(started_at);
CREATE TABLE sqlpost_message_log(
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  run INTEGER,
  partner TEXT NOT NULL,
  event TEXT NOT NULL,
  seq INTEGER,
  part INTEGER,
  parts INTEGER,
  bytes INTEGER,
  changes INTEGER,
  detail TEXT);
CREATE INDEX sqlpost_message_log_at ON sqlpost_message_log(at);
CREATE TABLE sqlpost_stats(
  day TEXT NOT NULL,
  partner TEXT NOT NULL,
  messages_in INTEGER NOT NULL DEFAULT 0,
  parts_in INTEGER NOT NULL DEFAULT 0,
  bytes_in INTEGER NOT NULL DEFAULT 0,
  rows_in INTEGER NOT NULL DEFAULT 0,
  messages_out INTEGER NOT NULL DEFAULT 0,
  parts_out INTEGER NOT NULL DEFAULT 0,
  bytes_out INTEGER NOT NULL DEFAULT 0,
  rows_out INTEGER NOT NULL DEFAULT 0,
  resent INTEGER NOT NULL DEFAULT 0,
  refused INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0,
  conflicts INTEGER NOT NULL DEFAULT 0,
  lag_max INTEGER NOT NULL DEFAULT 0,
  lag_sum INTEGER NOT NULL DEFAULT 0,
  lag_count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, partner)) WITHOUT ROWID;
)sql",
    // 5: restore detection and recovery (docs/protocol.md, "A site restored from a
    // backup"): the identity of every message built and of the last one applied, the
    // epoch each partner's message was applied in, and each stream's recovery state.
    R"sql(
ALTER TABLE sqlpost_sent ADD COLUMN digest BLOB;
ALTER TABLE sqlpost_streams ADD COLUMN applied_digest BLOB;
ALTER TABLE sqlpost_streams ADD COLUMN restore_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sqlpost_streams ADD COLUMN restore_request INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN echo_from INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN echo_to INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN recovery TEXT;
ALTER TABLE sqlpost_streams ADD COLUMN recovery_ack INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
CREATE TABLE sqlpost_applied(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  PRIMARY KEY (site, seq)) WITHOUT ROWID;
)sql",
    // 6: bounces (delivery status notifications) about our own parts; the health
    // records children send up (replication/health.h).
    R"sql(
CREATE TABLE sqlpost_bounces(
  id INTEGER PRIMARY KEY,
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  diagnostic TEXT NOT NULL,
  resplit_to INTEGER);
CREATE TABLE sqlpost_site_health(
  site TEXT PRIMARY KEY,
  via TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  version TEXT NOT NULL,
  reported_at INTEGER NOT NULL,
  conflicts INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  outbox_oldest INTEGER NOT NULL,
  halted TEXT NOT NULL) WITHOUT ROWID;
)sql",
    // 7: the inbox keeps apart two messages a partner sent under one number (its
    // abandoned timeline and the one after a restore from a backup), told apart by
    // the authenticated digest of the whole message; the first of our messages a
    // restore request asks back, until the partner applied the request; where a
    // regeneration for a restored partner started and the identities of the
    // messages it replaced; the identities of a partner's messages dropped as not
    // continuing its stream (docs/protocol.md).
    R"sql(
CREATE TABLE sqlpost_inbox_v7(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  digest BLOB NOT NULL,
  part INTEGER NOT NULL,
  parts INTEGER NOT NULL,
  mail BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (site, seq, digest, part)) WITHOUT ROWID;
INSERT INTO sqlpost_inbox_v7 SELECT site, seq, x'', part, parts, mail, received_at
  FROM sqlpost_inbox;
DROP TABLE sqlpost_inbox;
ALTER TABLE sqlpost_inbox_v7 RENAME TO sqlpost_inbox;
ALTER TABLE sqlpost_streams ADD COLUMN restore_lost_from INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN regen_from INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN regen_echo_from INTEGER;
ALTER TABLE sqlpost_streams ADD COLUMN regen_echo_to INTEGER;
ALTER TABLE sqlpost_bounce ADD COLUMN sent_in INTEGER;
CREATE TABLE sqlpost_superseded(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  digest BLOB NOT NULL,
  PRIMARY KEY (site, seq)) WITHOUT ROWID;
CREATE TABLE sqlpost_abandoned(
  site TEXT NOT NULL,
  digest BLOB NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (site, digest)) WITHOUT ROWID;
)sql",
    // 8: a partner's send schedule (replication/send_schedule.h): "" sends at every
    // run, "every HH:MM" or "at HH:MM[,HH:MM...]" only when due (SQL Remote's SEND
    // EVERY / SEND AT; docs/operations.md).
    R"sql(
ALTER TABLE sqlpost_sites ADD COLUMN send_schedule TEXT NOT NULL DEFAULT '';
)sql",
    // 9: key rotation through the stream (replication/rekey.h, docs/protocol.md "Key
    // rotation"): one row per partner while a rotation runs, kept as 'done' (without
    // any key) once the old key was forgotten. sqlpost_sites.key stays the key this
    // site seals its new messages with.
    R"sql(
CREATE TABLE sqlpost_rekey(
  site TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('offered', 'switched', 'done')),
  initiator INTEGER NOT NULL,
  new_key BLOB,
  old_key BLOB,
  offer_seq INTEGER NOT NULL DEFAULT 0,
  old_until INTEGER NOT NULL DEFAULT 0,
  marker_seq INTEGER NOT NULL DEFAULT 0,
  partner_switched INTEGER NOT NULL DEFAULT 0,
  started_at INTEGER NOT NULL,
  switched_at INTEGER,
  done_at INTEGER) WITHOUT ROWID;
)sql",
    // 10: the outbox and the inbox hold whole e-mails (up to max_message_bytes) and
    // become rowid tables with a unique index on their key: in a WITHOUT ROWID table
    // the e-mail was part of the key's b-tree, and every seek compared by reading
    // whole rows off their overflow pages, so a 600-part message took minutes to
    // receive (docs/performance.md, "One big transaction").
    R"sql(
CREATE TABLE sqlpost_outbox_v10(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  part INTEGER NOT NULL,
  parts INTEGER NOT NULL,
  mail BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  sent_count INTEGER NOT NULL DEFAULT 0,
  last_sent_at INTEGER,
  UNIQUE (site, seq, part));
INSERT INTO sqlpost_outbox_v10(site, seq, part, parts, mail, created_at, sent_count, last_sent_at)
  SELECT site, seq, part, parts, mail, created_at, sent_count, last_sent_at FROM sqlpost_outbox
  ORDER BY site, seq, part;
DROP TABLE sqlpost_outbox;
ALTER TABLE sqlpost_outbox_v10 RENAME TO sqlpost_outbox;
CREATE TABLE sqlpost_inbox_v10(
  site TEXT NOT NULL,
  seq INTEGER NOT NULL,
  digest BLOB NOT NULL,
  part INTEGER NOT NULL,
  parts INTEGER NOT NULL,
  mail BLOB NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (site, seq, digest, part));
INSERT INTO sqlpost_inbox_v10(site, seq, digest, part, parts, mail, received_at)
  SELECT site, seq, digest, part, parts, mail, received_at FROM sqlpost_inbox
  ORDER BY site, seq, digest, part;
DROP TABLE sqlpost_inbox;
ALTER TABLE sqlpost_inbox_v10 RENAME TO sqlpost_inbox;
)sql",
};

Result<> set_version(Database& db, int version) {
  SQLPOST_TRY_ASSIGN(
      Statement st, db.prepare("INSERT OR REPLACE INTO sqlpost_meta VALUES ('schema_version', ?)"));
  st.bind(1, static_cast<std::int64_t>(version));
  return st.run();
}

Result<> migrate_from(Database& db, int from) {
  for (int v = from; v < kSchemaVersion; ++v) {
    SQLPOST_TRY(db.exec(kMigrations.at(static_cast<std::size_t>(v))));
  }
  return set_version(db, kSchemaVersion);
}

}  // namespace

Result<bool> has_site_tables(Database& db) {
  SQLPOST_TRY_ASSIGN(
      const std::int64_t n,
      db.query_int("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                   "'sqlpost_meta'"));
  return n > 0;
}

Result<int> schema_version(Database& db) {
  SQLPOST_TRY_ASSIGN(const bool present, has_site_tables(db));
  if (!present) {
    return 0;
  }
  SQLPOST_TRY_ASSIGN(
      const std::int64_t v,
      db.query_int("SELECT value FROM sqlpost_meta WHERE key = 'schema_version'", 0));
  return static_cast<int>(v);
}

Result<> create_site_tables(Database& db) { return migrate_from(db, 0); }

Result<Database> open_site(const std::string& path) {
  SQLPOST_TRY_ASSIGN(Database db, Database::open(path, Database::Mode::kReadWrite));
  // Read without the write lock: an application may hold it, and opening a site
  // that needs no migration must not wait for it (statuses, runs with lock_wait).
  SQLPOST_TRY_ASSIGN(int version, schema_version(db));
  if (version == 0) {
    return make_error(Errc::kNotFound, path + " is not an sqlpost site; run 'sqlpost init " + path +
                                           " --site NAME --address ADDRESS' first");
  }
  if (version > kSchemaVersion) {
    return make_error(Errc::kUnsupported,
                      path + " was made by a newer sqlpost (schema version " +
                          std::to_string(version) + "; this sqlpost knows up to " +
                          std::to_string(kSchemaVersion) + "); upgrade sqlpost");
  }
  if (version < kSchemaVersion) {
    SQLPOST_TRY_ASSIGN(Transaction tx, Transaction::begin(db));
    SQLPOST_TRY_ASSIGN(version, schema_version(db));  // another process may have migrated
    if (version < kSchemaVersion) {
      SQLPOST_TRY(migrate_from(db, version));
    }
    SQLPOST_TRY(tx.commit());
  }
  return db;
}

}  // namespace sqlpost
