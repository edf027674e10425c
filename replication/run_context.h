// sqlpost/replication/run_context.h — what the steps of one engine phase share
// (internal to the engine: replication/engine.cpp and the units it drives).
//
// Contract: a RunContext lives for one phase of Engine (receive, apply, prepare
// or send). It refers to the caller's database, link, options and report, which
// must outlive it; load() reads this site and its partners and makes sure every
// partner has a stream. event() stamps a message-log event with the injected
// clock and adds it to the report. crash_point() is the test hook of
// EngineOptions::crash_at: an error that stops the run where it is. Not
// thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "replication/engine.h"
#include "replication/streams.h"
#include "schema/metadata.h"
#include "transport/codec.h"
#include "transport/link.h"

namespace sqlpost {

struct RunContext {
  RunContext(Database& database, transport::Link& mail, const EngineOptions& engine_options,
             RunReport& run_report)
      : db(database), link(mail), options(engine_options), report(run_report), streams(database) {}

  Database& db;
  transport::Link& link;
  const EngineOptions& options;
  RunReport& report;
  Streams streams;
  LocalSite local;
  std::map<std::string, Partner> partners;

  Result<> load();
  [[nodiscard]] std::int64_t now() const;
  void event(MessageEvent e) const;
  [[nodiscard]] Result<> crash_point(std::string_view point) const;
  // Removes the mail from the mailbox; a failure is noted in the report, not returned.
  Result<> remove_mail(const transport::MailRef& ref);
};

// The pair key shared with `p` (Errc::kConfig when it has none).
Result<transport::Key> key_of(const Partner& p);
// Failures of the local database end a phase; other failures are the partner's.
bool is_database_failure(Errc code);
// Adds `e` to the report's problems, in `context`.
void note(RunReport& report, const Error& e, const std::string& context);
Blob as_blob(std::string_view text);
// The bytes of a BLOB or TEXT value (empty for anything else).
std::string blob_text(const Value& v);

}  // namespace sqlpost
