#include "replication/run_context.h"

#include <algorithm>
#include <chrono>

namespace sqlpost {
namespace {

std::int64_t system_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<> RunContext::load() {
  SQLPOST_TRY_ASSIGN(local, load_local_site(db));
  SQLPOST_TRY_ASSIGN(const auto list, load_partners(db));
  for (const auto& p : list) {
    partners.emplace(p.name, p);
  }
  return streams.ensure_all();
}

std::int64_t RunContext::now() const { return options.now ? options.now() : system_now(); }

void RunContext::event(MessageEvent e) const {
  e.at = now();
  report.events.push_back(std::move(e));
}

Result<> RunContext::crash_point(std::string_view point) const {
  if (options.crash_at && options.crash_at(point)) {
    return make_error(Errc::kInternal, "injected crash at " + std::string(point));
  }
  return success();
}

Result<> RunContext::remove_mail(const transport::MailRef& ref) {
  auto removed = link.remove(ref);
  if (!removed.ok()) {
    note(report, removed.error(), "removing mail " + ref.id + " from the mailbox");
  }
  return success();
}

Result<transport::Key> key_of(const Partner& p) {
  if (p.key.size() != transport::Key::kBytes) {
    return make_error(Errc::kConfig, "site '" + p.name + "' has no valid key");
  }
  transport::Key::Bytes bytes{};
  std::copy(p.key.begin(), p.key.end(), bytes.begin());
  return transport::Key(bytes);
}

bool is_database_failure(Errc code) { return code == Errc::kDatabase || code == Errc::kBusy; }

void note(RunReport& report, const Error& e, const std::string& context) {
  report.problems.push_back(context + ": " + e.message);
  report.worst = e.code;
}

Blob as_blob(std::string_view text) {
  return Blob{std::vector<std::uint8_t>(text.begin(), text.end())};
}

std::string blob_text(const Value& v) {
  if (const auto* b = std::get_if<Blob>(&v.storage())) {
    return {b->bytes.begin(), b->bytes.end()};
  }
  if (const auto* t = std::get_if<Text>(&v.storage())) {
    return t->bytes;
  }
  return {};
}

}  // namespace sqlpost
