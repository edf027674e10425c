#include "tests/mail_reach_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <stdexcept>
#include <utility>

namespace sqlpost::test {

void EventLog::add(std::string event) {
  const std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(std::move(event));
}

std::vector<std::string> EventLog::events() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

long EventLog::first(const std::string& prefix) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t i = 0; i < events_.size(); ++i) {
    if (events_[i].rfind(prefix, 0) == 0) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

std::size_t EventLog::count(const std::string& prefix) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = 0;
  for (const auto& event : events_) {
    n += event.rfind(prefix, 0) == 0 ? 1 : 0;
  }
  return n;
}

ScriptedServer::ScriptedServer(std::string name, EventLog& log, std::string greeting, Reply reply)
    : name_(std::move(name)), log_(log), greeting_(std::move(greeting)), reply_(std::move(reply)) {
  listener_ = socket(AF_INET, SOCK_STREAM, 0);
  if (listener_ < 0) {
    throw std::runtime_error("socket() failed");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): POSIX sockets API
  auto* generic = reinterpret_cast<sockaddr*>(&addr);
  if (bind(listener_, generic, len) != 0 || listen(listener_, 8) != 0 ||
      getsockname(listener_, generic, &len) != 0) {
    close(listener_);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

ScriptedServer::~ScriptedServer() {
  shutdown(listener_, SHUT_RDWR);  // wakes accept(): the thread ends
  thread_.join();
  close(listener_);
}

void ScriptedServer::serve() {
  for (;;) {
    const int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) {
      return;
    }
    converse(fd);
    close(fd);
  }
}

namespace {

bool send_all(int fd, const std::string& text) {
  std::size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// "AUTH PLAIN secret" -> "AUTH PLAIN", "PASS secret" -> "PASS": no secret in the log.
std::string loggable(const std::string& line) {
  const bool auth = line.rfind("AUTH ", 0) == 0 || line.find(" AUTHENTICATE ") != std::string::npos;
  if (line.rfind("PASS", 0) == 0) {
    return "PASS";
  }
  if (auth) {
    const std::size_t mechanism_end = line.find(' ', line.find("AUTH") + 5);
    return line.substr(0, mechanism_end);
  }
  if (line.find(" LOGIN ") != std::string::npos) {
    return line.substr(0, line.find(" LOGIN ") + 6);  // IMAP "A001 LOGIN"
  }
  return line;
}

}  // namespace

void ScriptedServer::converse(int fd) {
  log_.add(name_ + " connect");
  if (!send_all(fd, greeting_ + "\r\n")) {
    return;
  }
  ScriptTurn turn;
  std::string buffer;
  std::array<char, 4096> chunk{};
  for (;;) {
    const std::size_t end = buffer.find("\r\n");
    if (end == std::string::npos) {
      const ssize_t n = recv(fd, chunk.data(), chunk.size(), 0);
      if (n <= 0) {
        return;
      }
      buffer.append(chunk.data(), static_cast<std::size_t>(n));
      continue;
    }
    turn.line = buffer.substr(0, end);
    buffer.erase(0, end + 2);
    if (!turn.in_data) {
      log_.add(name_ + " " + loggable(turn.line));
    }
    const std::string reply = reply_(turn);
    std::string wire;
    std::size_t start = 0;
    while (!reply.empty() && start <= reply.size()) {
      const std::size_t nl = reply.find('\n', start);
      wire +=
          reply.substr(start, nl == std::string::npos ? std::string::npos : nl - start) + "\r\n";
      if (nl == std::string::npos) {
        break;
      }
      start = nl + 1;
    }
    if (!wire.empty() && !send_all(fd, wire)) {
      return;
    }
    if (turn.close) {
      return;
    }
  }
}

}  // namespace sqlpost::test
