// sqlpost/transport/curl_pop3.h — the own mailbox over POP3 with libcurl.
//
// Contract: one Pop3Link = at most one POP3 session (one libcurl handle, one
// connection) at a time.
//  * list() ends the current session (QUIT: commits pending deletions) and starts a
//    new one — a POP3 session is a snapshot, so only a new session sees new mail —
//    then sends UIDL and LIST. Ids are the UIDLs (stable across sessions); sizes come
//    from LIST; order is the server's message order (oldest first on Dovecot).
//  * fetch() sends RETR <n>, n = the message number of the UIDL in this session
//    (looked up again in a new session if none is open). Mail over kMaxMailBytes is
//    refused (kLimitExceeded) from LIST's size, or aborted from the write callback.
//  * fetch_head() sends TOP <n> 0 (the header block only), for mail too big to fetch.
//  * remove() checks "UIDL <n>" still names the id, then sends DELE <n>. The
//    deletion takes effect ONLY when the session ends with QUIT: at close(), at the
//    next list(), or in the destructor. Until then the server keeps the mail (and
//    restores it if the connection breaks: the mail will be listed again).
//  * If libcurl had to reconnect in the middle of a session (message numbers of the
//    old session are void), the command's result is discarded (after RSET for DELE)
//    and kTransient is returned; list() again.
//  * Any error ends the session. Unknown or vanished id: kNotFound. Other errors as
//    in curl_server.h; a "-ERR" reply is kTransient with the server's text.
// send(): kUnsupported (receive-only link).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "transport/curl_handle.h"
#include "transport/curl_server.h"
#include "transport/link.h"

namespace sqlpost::transport {

// The longest UIDL RFC 1939 allows.
inline constexpr std::size_t kMaxUidlBytes = 70;

class Pop3Link final : public Link {
 public:
  // kConfig for unusable settings (port 0: 110, or 995 for kTls); nothing contacted yet.
  static Result<std::unique_ptr<Pop3Link>> open(MailServer server);

  Result<> send(std::string_view to_address, std::string_view mail) override;
  Result<std::vector<MailRef>> list() override;
  Result<std::string> fetch(const MailRef& ref) override;
  // "TOP <n> 0": the header block only, at most max_bytes (else kLimitExceeded).
  Result<std::string> fetch_head(const MailRef& ref, std::size_t max_bytes) override;
  Result<> remove(const MailRef& ref) override;

  // Ends the session with QUIT, committing the deletions of remove(). kTransient if
  // the session was already broken (its deletions are then lost: mail stays).
  Result<> close();
  // DELEs sent in the current session and not yet committed.
  [[nodiscard]] std::size_t pending_deletions() const { return pending_deletions_; }

  Pop3Link(MailServer server, std::string base_url);  // use open()
  Pop3Link(const Pop3Link&) = delete;
  Pop3Link& operator=(const Pop3Link&) = delete;
  Pop3Link(Pop3Link&&) = delete;
  Pop3Link& operator=(Pop3Link&&) = delete;
  ~Pop3Link() override;

 private:
  struct Entry {
    long number = 0;
    std::size_t size = 0;
  };

  Result<> begin_session();
  void end_session();
  Result<> command(const std::string& path, const char* custom, bool nobody, std::string_view what);
  Result<> load_index(bool with_sizes);
  Result<Entry> find(const std::string& id);

  MailServer server_;
  std::string base_url_;
  std::unique_ptr<CurlEasy> session_;
  bool connected_ = false;
  std::map<std::string, Entry> index_;  // UIDL -> message number in this session
  std::vector<std::string> order_;      // UIDLs in message-number order
  std::size_t pending_deletions_ = 0;
};

}  // namespace sqlpost::transport
