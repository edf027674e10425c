// Bounces (RFC 3464 delivery status notifications) about our own parts: matched to
// the part by the Message-ID it was sent with, recorded, removed from the mailbox;
// a size refusal re-splits the message smaller; anything that does not verify stays
// foreign mail, untouched (issue 10, case 6).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "agent/status.h"
#include "replication/engine.h"
#include "tests/cluster.h"

using namespace sqlpost;
using namespace sqlpost::test;

namespace {

enum class Returned { kWholeMessage, kHeadersOnly };

// A bounce as Postfix writes one: the report, then the original (whole, or its headers).
std::string bounce_for(std::string_view original, const std::string& status,
                       const std::string& diagnostic, Returned returned) {
  const std::string b = "bounce-boundary-1";
  std::string original_part(original);
  std::string type = "message/rfc822";
  if (returned == Returned::kHeadersOnly) {
    original_part = original_part.substr(0, original_part.find("\r\n\r\n") + 4);
    type = "text/rfc822-headers";
  }
  return "From: MAILER-DAEMON@hq.test (Mail Delivery System)\r\n"
         "To: hq@hq.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
         "Message-ID: <20261206.bounce@hq.test>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"" +
         b + "\"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--" + b +
         "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nI'm sorry to have to inform "
         "you that your message could not be delivered.\r\n\r\n--" +
         b +
         "\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; hq.test\r\n"
         "Arrival-Date: Sun,  6 Dec 2026 22:00:00 +0000 (UTC)\r\n\r\n"
         "Final-Recipient: rfc822; r1@r1.test\r\nOriginal-Recipient: rfc822;r1@r1.test\r\n"
         "Action: failed\r\nStatus: " +
         status + "\r\nDiagnostic-Code: smtp; " + diagnostic + "\r\n\r\n--" + b +
         "\r\nContent-Type: " + type + "\r\n\r\n" + original_part + "\r\n--" + b + "--\r\n";
}

RunReport run_hub(Cluster& c) {
  Engine engine(*c.site("hq").db, *c.site("hq").link, c.options());
  auto ran = engine.run_once();
  REQUIRE_MESSAGE(ran.ok(), (ran.ok() ? "" : ran.error().message));
  return std::move(ran).value();
}

std::size_t reports_in_mailbox(Cluster& c) {
  std::size_t n = 0;
  for (const auto& mail : c.network().mailbox("hq@hq.test")) {
    n += mail.find("multipart/report") != std::string::npos ? 1 : 0;
  }
  return n;
}

// Hub rows large enough for a message of several parts.
void write_big_rows(Site& hub) {
  exec(*hub.db,
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8) "
       "INSERT OR REPLACE INTO item SELECT i, 'big', i, 1.0, randomblob(3000) FROM n");
}

}  // namespace

TEST_SUITE_BEGIN("bounces");

TEST_CASE("a size bounce re-splits the message smaller and every site converges") {
  const TempDir dir;
  Cluster c(dir, 2, 31, {});
  c.max_message_bytes = 16384;
  std::vector<std::string> refused;  // r1's server refuses mail over 9,000 bytes
  c.network().drop_if([&](std::string_view to, std::string_view mail) {
    const bool refuse = to == "r1@r1.test" && mail.size() > 9000;
    if (refuse) {
      refused.emplace_back(mail);
    }
    return refuse;
  });
  write_big_rows(c.site("hq"));
  run_hub(c);
  REQUIRE(refused.size() >= 2);
  for (const auto& mail : refused) {
    c.network().put("hq@hq.test",
                    bounce_for(mail, "5.3.4", "552 5.3.4 Message size exceeds fixed limit",
                               Returned::kWholeMessage));
  }
  const RunReport report = run_hub(c);
  Database& hub = *c.site("hq").db;
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_bounces WHERE site = 'r1'") ==
        static_cast<std::int64_t>(refused.size()));
  // The first bounce re-splits the message; the others are about the replaced encoding.
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_bounces WHERE resplit_to <= 8192") == 1);
  CHECK(reports_in_mailbox(c) == 0);  // ours: recorded, then removed
  CHECK(report.foreign == 0);
  CHECK(query_int(hub, "SELECT max(length(mail)) FROM sqlpost_outbox WHERE site = 'r1'") <= 9000);
  CHECK(query_int(hub,
                  "SELECT count(*) FROM sqlpost_outbox WHERE site = 'r2' AND length(mail) "
                  "> 9000") > 0);  // only the refusing partner's messages got smaller
  REQUIRE(c.run_until_quiet(100));
  const std::string diff = c.differences();
  CHECK_MESSAGE(diff.empty(), diff);

  refused.clear();  // the partner's later messages use the smaller size at once
  write_big_rows(c.site("hq"));
  exec(*c.site("hq").db, "UPDATE item SET data = randomblob(3001) WHERE name = 'big'");
  REQUIRE(c.run_until_quiet(100));
  CHECK(refused.empty());
  CHECK(c.differences().empty());
}

TEST_CASE("a permanent bounce is a problem of the run; a forged one stays foreign") {
  const TempDir dir;
  Cluster c(dir, 1, 32, {});
  std::vector<std::string> lost;
  c.network().drop_if([&](std::string_view to, std::string_view mail) {
    if (to == "r1@r1.test" && lost.empty()) {
      lost.emplace_back(mail);
      return true;
    }
    return false;
  });
  exec(*c.site("hq").db, "INSERT INTO item VALUES (1, 'a', 1, 1.0, NULL)");
  run_hub(c);
  REQUIRE(lost.size() == 1);

  std::string forged = lost.front();  // the same part, a Message-ID we never sent
  const auto id_at = forged.find("Message-ID: <sqlpost.") + 21;
  forged.replace(id_at, 33, "0123456789abcdef.0123456789abcdef");
  c.network().put("hq@hq.test",
                  bounce_for(forged, "5.1.1", "550 5.1.1 User unknown", Returned::kHeadersOnly));
  c.network().put("hq@hq.test", bounce_for(lost.front(), "5.1.1", "550 5.1.1 User unknown",
                                           Returned::kHeadersOnly));
  const RunReport report = run_hub(c);
  Database& hub = *c.site("hq").db;
  CHECK(query_int(hub,
                  "SELECT count(*) FROM sqlpost_bounces WHERE status = '5.1.1' AND "
                  "resplit_to IS NULL") == 1);
  CHECK(report.worst == Errc::kPermanent);
  bool told = false;
  for (const auto& p : report.problems) {
    told =
        told || p.find("bounced (failed 5.1.1: smtp; 550 5.1.1 User unknown)") != std::string::npos;
  }
  CHECK_MESSAGE(told, "no problem tells of the bounce");
  CHECK(report.foreign == 1);
  CHECK(reports_in_mailbox(c) == 1);  // the forged one, left alone
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_outbox WHERE site = 'r1'") == 1);
  const auto status = collect_status(hub);
  REQUIRE(status.ok());
  CHECK(status.value()["bounces"].size() == 1);
  CHECK(render_status_text(status.value()).find("BOUNCED") != std::string::npos);

  const RunReport again = run_hub(c);  // a known foreign mail is not read again
  CHECK(again.worst != Errc::kPermanent);
  CHECK(query_int(hub, "SELECT count(*) FROM sqlpost_bounces") == 1);
}

TEST_SUITE_END();
