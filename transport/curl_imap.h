// sqlpost/transport/curl_imap.h — the own mailbox over IMAP with libcurl.
//
// Contract: one ImapLink keeps one connection (one libcurl handle, reused; recreated
// after an error) with `mailbox` selected.
//  * list() sends UID FETCH 1:* (RFC822.SIZE FLAGS): ids are the UIDs (decimal),
//    in UID order (= arrival order); sizes are RFC822.SIZE. Every line is parsed as
//    hostile input (malformed lines: kCorruption). A change of UIDVALIDITY (mailbox
//    re-created) is not detected.
//  * fetch() fetches BODY[] by URL (";UID=n"). libcurl's fetch sets \Seen; for mail
//    the last list() saw unseen, \Seen is removed again (UID STORE -FLAGS), so foreign
//    mail keeps its state. Mail over kMaxMailBytes: kLimitExceeded (from the size,
//    or aborted from the write callback). A UID that is gone: kNotFound.
//    fetch_head() reads only the header block (BODY[HEADER]), for mail too big to fetch.
//  * remove() takes effect IMMEDIATELY: UID STORE n +FLAGS.SILENT (\Deleted), then
//    UID EXPUNGE n (UIDPLUS; only this mail). Without UIDPLUS it falls back to
//    EXPUNGE, which also expunges other mail already flagged \Deleted. Removing a UID
//    that is already gone succeeds.
// send(): kUnsupported. Other errors as in curl_server.h.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_handle.h"
#include "transport/curl_server.h"
#include "transport/link.h"

namespace sqlpost::transport {

struct ImapConfig {
  MailServer server;              // port 0: 143, or 993 for kTls
  std::string mailbox = "INBOX";  // 1..200 of [A-Za-z0-9._/-]
};

// The URL of mailbox `box` (any printable ASCII name, e.g. "Shop Mail"; '/'
// separates levels) on `server`, built with libcurl's URL API. kConfig otherwise.
Result<std::string> imap_mailbox_url(const MailServer& server, std::string_view box);

class ImapLink final : public Link {
 public:
  // kConfig for unusable settings; nothing is contacted yet.
  static Result<std::unique_ptr<ImapLink>> open(ImapConfig config);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  // BODY[HEADER] of the mail (";SECTION=HEADER"), at most max_bytes (else
  // kLimitExceeded); \Seen is restored like fetch() does.
  Result<std::string> fetch_head(const MailRef& ref, std::size_t max_bytes) override;
  Result<> remove(const MailRef& ref) override;

  ImapLink(ImapConfig config, std::string mailbox_url);  // use open()

 private:
  void keep_unseen(const MailRef& ref);
  Result<> command(const std::string& url, const std::string& custom, std::string_view what);
  Result<CurlEasy*> handle();

  ImapConfig config_;
  std::string mailbox_url_;
  std::unique_ptr<CurlEasy> easy_;
  std::set<std::string> unseen_;  // UIDs the last list() saw without \Seen
};

}  // namespace sqlpost::transport
