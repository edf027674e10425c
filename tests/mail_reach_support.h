// sqlpost/tests/mail_reach_support.h — a tiny scripted mail server on 127.0.0.1 for
// the transport tests that need a server answering in a way Postfix and Dovecot do
// not (POP3 [LOGIN-DELAY], a mechanism list of our choosing, a log of the order of
// events across two servers).
//
// Contract: ScriptedServer listens on an ephemeral loopback port as soon as it is
// constructed (so a client can connect at once: the kernel queues the connection;
// no sleeps), and serves connections one after another on its own thread: it sends
// `greeting`, then for each line the client sends (CRLF removed) calls `reply`,
// which returns the text to send (CRLF added per line; empty: nothing) and may set
// `close` to end the connection after it. Every connection and every line is
// appended to the shared EventLog as "<name> connect" / "<name> <line>" (the line
// cut at its first space after the command word for AUTH/PASS, so no secret is
// logged) before the reply is sent: the log's order is the order of the protocol.
// The destructor stops the thread (shutdown of the listening socket) and joins it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sqlpost::test {

class EventLog {
 public:
  void add(std::string event);
  [[nodiscard]] std::vector<std::string> events() const;
  // Index of the first event starting with `prefix`, or -1.
  [[nodiscard]] long first(const std::string& prefix) const;
  [[nodiscard]] std::size_t count(const std::string& prefix) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> events_;
};

// Per connection: what the client sent last, and whether to hang up after the reply.
struct ScriptTurn {
  std::string line;
  bool close = false;
  bool in_data = false;  // SMTP: inside DATA (the script sets and clears it)
};

class ScriptedServer {
 public:
  using Reply = std::function<std::string(ScriptTurn&)>;
  ScriptedServer(std::string name, EventLog& log, std::string greeting, Reply reply);
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  ScriptedServer(ScriptedServer&&) = delete;
  ScriptedServer& operator=(ScriptedServer&&) = delete;
  ~ScriptedServer();

  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  void serve();
  void converse(int fd);

  std::string name_;
  EventLog& log_;
  std::string greeting_;
  Reply reply_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace sqlpost::test
