// sqlpost/transport/link.h — how mail travels, hidden from replication.
//
// Contract: a Link sends a complete e-mail (as produced by encode_message) to an
// address, and gives access to this site's own mailbox: list() the mails waiting
// (oldest first where the link can tell), fetch() one (never more than
// kMaxMailBytes; kLimitExceeded if bigger), remove() one after it has been safely
// stored (inbox first). A mailbox may hold foreign mail: a Link never interprets
// mail, the caller decides. Errors: kInvalidArgument (bad address or ref),
// kNotFound (mail gone), kIOError, kTransient (retry later), kPermanent.
// finish() ends the mailbox session at the end of a run: removals a link could only
// mark (POP3 DELE) take effect there; a failed finish() loses no mail (it is listed
// again and recognised as a duplicate). fetch_head() reads only the start of a
// mail (oversize mail: sqlpost's or foreign?).
// flush() makes every mail send() accepted since the last flush() durable at the
// link, in one step: a link may defer delivery to it (the file link writes a pass's
// mails and makes them durable together). A sender records a mail as sent only
// after the flush() that followed its send() succeeded; a mail not flushed (a failed
// flush(), a crash, a link destroyed before) may be lost or may arrive anyway, and
// is never recorded as sent, so it goes again (a receiver drops the duplicate).
// Links whose send() is durable when it returns (SMTP: the server accepted the mail)
// keep the default, success.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace sqlpost::transport {

struct MailRef {
  std::string id;        // link-specific, stable until remove()
  std::size_t size = 0;  // bytes, as reported by the mailbox
};

class Link {
 public:
  Link() = default;
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  Link(Link&&) = delete;
  Link& operator=(Link&&) = delete;
  virtual ~Link() = default;

  virtual Result<> send(std::string_view to_address, std::string_view mail) = 0;
  virtual Result<std::vector<MailRef>> list() = 0;
  virtual Result<std::string> fetch(const MailRef& ref) = 0;
  virtual Result<> remove(const MailRef& ref) = 0;
  // The first `max_bytes` of a mail (its header block), for mail fetch() refuses as
  // too big: is it sqlpost's? kUnsupported where the link cannot tell.
  virtual Result<std::string> fetch_head(const MailRef& /*ref*/, std::size_t /*max_bytes*/) {
    return make_error(Errc::kUnsupported, "this link cannot read the head of a mail");
  }
  virtual Result<> flush() { return success(); }
  virtual Result<> finish() { return success(); }
};

}  // namespace sqlpost::transport
