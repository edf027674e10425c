// sqlpost/replication/mail_bounces.h — delivery status notifications about our
// parts, and the per-partner message size they teach (internal to the engine).
//
// Contract: handle_bounce() takes a bounce whose returned Message-ID verifies
// under the pair key of the partner it names (anything else: false, nothing
// done). It records the bounce (sqlpost_bounces, the newest 1000), re-splits the
// message smaller on a permanent size refusal, holds the part for resend_timeout
// on any other permanent refusal, reports it, and removes the mail from the
// mailbox; true. max_message_bytes_for() is the size limit of messages to a
// partner: max_message_bytes, or what a size refusal taught. Not thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "replication/run_context.h"
#include "transport/dsn.h"

namespace sqlpost {

Result<bool> handle_bounce(RunContext& run, const transport::MailRef& ref,
                           const transport::Bounce& b);
// max_message_bytes, or less for a partner whose server refused larger mail.
std::size_t max_message_bytes_for(RunContext& run, const std::string& site);

}  // namespace sqlpost
