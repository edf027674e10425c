// sqlpost/replication/publication_change.h — live publication changes: a table
// joins or leaves a publication that sites already subscribe to.
//
// Contract (docs/protocol.md, "Live publication changes"):
//  * announce_article_added() runs in the caller's write transaction right after
//    `publish` added the article. When the publication has subscribers it logs an
//    article record (the article and the table's definition as this site has it:
//    its CREATE TABLE and CREATE INDEX statements) and then every current row of
//    the table as an insert with origin "!article <publication>". Routing sends
//    both, in log order, only to the children subscribed to the publication (each
//    gets the rows of its own subset), so a subscriber receives the definition,
//    then its starting rows, then every later change — exactly once, in order.
//  * announce_article_removed() logs the removal for the subscribers (call it
//    before the article is removed; for a whole publication it names each
//    subscriber, since the subscriptions go with it).
//  * apply_article_record() runs a received record inside the apply
//    transaction. Only the parent may send one, and only for a publication this
//    site already has (or, for a record naming this site, the publication the
//    parent just subscribed it to); the definition must be one plain CREATE TABLE of exactly
//    the named table (and CREATE INDEX statements on it), run through
//    run_definition() (schema/sandbox.h). The site creates the table (leaving out
//    the columns the article does not publish, as extract does), adds the
//    article (so its capture triggers and metadata make it replicate both ways),
//    and logs the record again for its own children (a record for an article
//    this site already has changes nothing). A removal removes the
//    article here (capture and routing stop; the data stays) and is passed on.
//    Anything refused is Errc::kAuthentication and stops that partner's stream.
#pragma once

#include <string>
#include <string_view>

#include "replication/payload.h"
#include "schema/db.h"
#include "schema/metadata.h"

namespace sqlpost {

inline constexpr std::size_t kMaxArticleIndexes = 64;

Result<> announce_article_added(Database& db, std::string_view publication, std::string_view table);
// `publish` at the command line: adds the article and announces it; when the
// publication has the table already, widens its column list instead (the record
// says so; subscribers add the columns they lack with the parent's declaration,
// through the passthrough sandbox) and sends the rows again with the new columns.
Result<> publish_live(Database& db, const Article& article);
// `table` empty: every article of the publication.
Result<> announce_article_removed(Database& db, std::string_view publication,
                                  std::string_view table);

// `subscribe` / `unsubscribe` of a live child (one that was extracted: its send
// position moved on): the same records, naming that one site, for every article
// of the publication (a new subscription also gets the starting rows, origin
// "!article <publication> <site>"). A site not extracted yet gets it all from
// extract, so nothing is logged for it.
Result<> announce_subscription(Database& db, std::string_view site, std::string_view publication);
Result<> announce_unsubscription(Database& db, std::string_view site, std::string_view publication);

// `from_child`: the sender is a child of this site (never allowed to send one).
Result<> apply_article_record(Database& db, const WireChange& record, const std::string& from_site,
                              bool from_child);

}  // namespace sqlpost
