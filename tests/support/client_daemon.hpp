// Test support for client and parkerctl tests against the real daemon: a parker process on a
// socket path the test chooses (so it can be restarted on the same path), and real TCP
// loopback connections to park.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "parker/unique_fd.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

namespace parker::test {

// build/bin/parker on `socket_path`, started, stopped and restarted by the test.
class ParkerDaemon {
 public:
  explicit ParkerDaemon(std::string socket_path, std::vector<std::string> args = {})
      : socket_path_(std::move(socket_path)), args_(std::move(args)) {}

  // Starts it under RLIMIT_NOFILE `limit` (soft and hard; prlimit execs parker, so pid() and
  // fd_count() are parker's): a parker that is full after a few dozen parks.
  void set_fd_limit(std::size_t limit) { fd_limit_ = limit; }

  void start() {
    REQUIRE_FALSE(process_.has_value());
    std::vector<std::string> argv;
    if (fd_limit_) {
      argv = {"/usr/bin/prlimit", "--nofile=" + std::to_string(*fd_limit_) + ":" + std::to_string(*fd_limit_), "--"};
    }
    argv.insert(argv.end(), {program_path("parker"), "--socket", socket_path_});
    argv.insert(argv.end(), args_.begin(), args_.end());
    process_.emplace(argv);
    INFO(process_->output());
    REQUIRE(process_->wait_for_output("listening on", 10s));
  }
  // SIGTERM (parker hands everything back) and wait; returns the exit code.
  int stop() {
    REQUIRE(process_.has_value());
    process_->signal(SIGTERM);
    auto status = process_->wait(10s);
    REQUIRE(status.has_value());
    int code = exit_code(*status);
    process_.reset();
    return code;
  }
  // Waits for a parker already told to stop (e.g. signalled by the test itself) to exit.
  int wait_exit() {
    REQUIRE(process_.has_value());
    auto status = process_->wait(10s);
    REQUIRE(status.has_value());
    int code = exit_code(*status);
    process_.reset();
    return code;
  }
  // SIGKILL: parker dies without a word, as in a crash.
  void kill() {
    REQUIRE(process_.has_value());
    process_->signal(SIGKILL);
    REQUIRE(process_->wait(10s).has_value());
    process_.reset();
  }

  [[nodiscard]] bool running() const noexcept { return process_.has_value(); }
  [[nodiscard]] pid_t pid() const { return process_->pid(); }
  [[nodiscard]] std::size_t fd_count() const { return open_fd_count(process_->pid()); }
  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_path_; }
  [[nodiscard]] std::string output() const { return process_ ? process_->output() : std::string(); }

  // Waits until parker holds exactly `expected` fds; returns the last count seen.
  std::size_t settle_fd_count(std::size_t expected, std::chrono::milliseconds timeout = 10s) const {
    std::size_t seen = 0;
    eventually([&] { return (seen = fd_count()) == expected; }, timeout);
    return seen;
  }

 private:
  std::string socket_path_;
  std::vector<std::string> args_;
  std::optional<std::size_t> fd_limit_;
  std::optional<Process> process_;
};

// Runs build/bin/parkerctl with `args` (a shell-quoted string) and returns code and output.
inline CommandResult run_parkerctl(const std::string& args) {
  return run_command(program_path("parkerctl") + " " + args + " 2>&1");
}

// One TCP connection over loopback: the server's end (to park) and the client's end (to
// write to, to wake it; it reads EOF when the server's end is closed everywhere).
struct TcpConnection {
  UniqueFd server_side;
  UniqueFd client_side;
};

class TcpLoopback {
 public:
  TcpLoopback() {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener_.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // an ephemeral port: tests run in parallel
    REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_.get(), 1024) == 0);
    socklen_t len = sizeof addr_;
    REQUIRE(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr_), &len) == 0);
  }

  TcpConnection connect() {
    TcpConnection c;
    c.client_side.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(c.client_side.valid());
    REQUIRE(::connect(c.client_side.get(), reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) == 0);
    c.server_side.reset(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    REQUIRE(c.server_side.valid());
    return c;
  }

 private:
  UniqueFd listener_;
  sockaddr_in addr_{};
};

// Writes all of `text` to a blocking socket.
inline void write_text(int fd, const std::string& text) {
  REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
}

// Reads what is there now (waiting up to `timeout` for the first byte); "" on EOF.
inline std::string read_some(int fd, std::chrono::milliseconds timeout = 5s) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return "<timeout>";
  char buffer[4096];
  ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
  if (n < 0) return "<error>";
  return std::string(buffer, static_cast<std::size_t>(n));
}

}  // namespace parker::test
