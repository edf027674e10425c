// sqlpost/replication/receiver.h — classifying each mail of the mailbox and
// committing what is sqlpost's (internal to the engine; Engine::receive()).
//
// Contract: receive_one() handles one mail. Foreign mail (not sqlpost's, and no
// bounce of ours) is remembered by id and never touched. sqlpost mail that does
// not parse, authenticate, come from a known partner, or is addressed to another
// site, is stored in sqlpost_rejected, counted, and only then removed from the
// mailbox. An authenticated part is committed to the inbox (or, when its message
// was applied already, dropped and acknowledged again) before it is removed from
// the mailbox; an acknowledgement-only message is processed in one transaction.
// A failure of the link is noted in the report; a database failure is returned.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "replication/inbox.h"
#include "replication/run_context.h"

namespace sqlpost {

class Receiver {
 public:
  explicit Receiver(RunContext& run) : run_(run), decoder_(run.options.decode_limits) {}

  Result<> receive_one(const transport::MailRef& ref);

 private:
  Result<bool> is_known_foreign(const std::string& id);
  Result<> remember_foreign(const std::string& id);
  Result<> reject(const transport::MailRef& ref, std::string_view mail,
                  const std::string& claimed_sender, const std::string& reason);
  Result<> handle_control(const transport::MailRef& ref, std::string_view mail,
                          const Partner& partner, transport::OpenedPart part);
  Result<> store_part(const transport::MailRef& ref, std::string_view mail, const Partner& partner,
                      const transport::OpenedPart& opened);
  Result<> drop_other_encoding(const Partner& partner, const InboxMessage& message,
                               std::uint32_t parts);
  Result<> make_room_for(const Partner& partner, const InboxMessage& message);
  Result<> handle_sqlpost_mail(const transport::MailRef& ref, const std::string& mail);
  Result<> handle_oversize(const transport::MailRef& ref, const Error& why);
  Result<> count_dropped_oversize();

  RunContext& run_;
  BoundedDecoder decoder_;
};

}  // namespace sqlpost
