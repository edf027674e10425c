// sqlpost/agent/mail_settings.h — the `smtp` and `ftp` links' settings, read from the control
// parameters of a site (see params.h), and where its passwords come from.
//
// Contract: missing_mail_parameters() lists the required keys that are not set
// (link=smtp: smtp.host, the receive protocol's host and user, and a password for
// it). load_mail_settings() turns the parameters into a transport::MailLinkConfig:
// ports default per security, SMTP user/password default to the receive account's
// (as in SQL Remote), the envelope sender is the site's address. With smtp.mode=direct
// (no smtp.host needed), `direct` is set, the SMTP port is smtp.mx_port (25) and the
// SMTP user and password are empty: nothing authenticates at another domain's MX. A password comes,
// in this order, from KEY_env (an environment variable), KEY_file (a file that must
// be a regular file of mode 0600 or stricter) or KEY itself (stored in the site's
// database by `sqlpost config DB --secret KEY`). With KEY.oauth2_token_command
// (pop3/imap/smtp) the login uses an OAuth2 access token instead: the command runs
// (agent/oauth2.h) on every load_mail_settings(), its token replaces the password,
// and `auth` must be empty, XOAUTH2 or OAUTHBEARER (XOAUTH2/OAUTHBEARER without a
// command is refused too). SMTP without a password or command of its own uses the
// receive account's token. smtp.pop_before_smtp=yes sets pop_before_smtp (not with
// smtp.mode=direct: kConfig). Errors are kConfig with a message naming the key and the
// command that fixes it; no message ever holds a password or a token.
// read_secret() reads one line without echo from a terminal, or from standard input
// when that is not a terminal.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "schema/db.h"
#include "schema/metadata.h"
#include "transport/curl_ftp.h"
#include "transport/mail_links.h"

namespace sqlpost {

Result<std::vector<std::string>> missing_mail_parameters(Database& db);
Result<transport::MailLinkConfig> load_mail_settings(Database& db, const LocalSite& site);
// smtp.mode=direct is set: mail goes to each recipient domain's MX (smtp.mx_port,
// smtp.dns_server), smtp.host is not needed, and no SMTP credentials are used.
Result<bool> direct_send(Database& db);
// The domains of the partners' addresses, each once, in the partners' order.
Result<std::vector<std::string>> partner_domains(Database& db);

// link=ftp: the required keys not set (ftp.host, ftp.user, a password for it), and the
// settings (ftp.port/security/dir, tls.*, timeout; passwords as above).
Result<std::vector<std::string>> missing_ftp_parameters(Database& db);
Result<transport::FtpConfig> load_ftp_settings(Database& db, const LocalSite& site);

// Prompts with `prompt` on a terminal (echo off) or reads a line from stdin.
Result<std::string> read_secret(std::string_view prompt);

// True when `tls.verify=no` is set: the caller warns.
Result<bool> tls_verification_off(Database& db);

}  // namespace sqlpost
