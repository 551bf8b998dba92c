// Test support for heavy_server: plain TCP clients with deadlines, and the real heavy_server
// program on an ephemeral port (found in its "listening on ADDR:PORT" log line).
// Header-only so that each heavy_*_test.cpp can use it without a CMake change.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "parker/unique_fd.hpp"
#include "support/process.hpp"

namespace heavy::test {

using namespace std::chrono_literals;
using parker::UniqueFd;

// A blocking TCP connection to 127.0.0.1:port (throws when refused).
inline UniqueFd connect_tcp(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect to port " + std::to_string(port) + " failed");
  }
  return fd;
}

inline void send_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("send failed");
    done += static_cast<std::size_t>(n);
  }
}

// Whatever arrives within `wait` (0: only what is there now). Sets *eof at end of stream.
inline std::string recv_some(int fd, std::chrono::milliseconds wait, bool* eof = nullptr) {
  std::string out;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return out;
  char buf[65536];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) out.assign(buf, static_cast<std::size_t>(n));
  if (n == 0 && eof != nullptr) *eof = true;
  if (n < 0 && errno == ECONNRESET && eof != nullptr) *eof = true;
  return out;
}

// Reads until `expected_size` bytes arrived, the stream ended, or `timeout` passed.
inline std::string recv_bytes(int fd, std::size_t expected_size, std::chrono::milliseconds timeout = 10s,
                              bool* eof = nullptr) {
  std::string out;
  bool ended = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < expected_size && !ended && std::chrono::steady_clock::now() < deadline) {
    out += recv_some(fd, 20ms, &ended);
  }
  if (eof != nullptr) *eof = ended;
  return out;
}

// True when the peer closed the connection within `timeout` (bytes before the end are skipped).
inline bool closed_by_peer(int fd, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    bool eof = false;
    (void)recv_some(fd, 20ms, &eof);
    if (eof) return true;
  }
  return false;
}

// Full path of a program found on PATH (posix_spawn needs one), or empty.
inline std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

// The real heavy_server, started on `port` (0: an ephemeral one; a fixed one for the successor
// of a process that died with its listening socket); killed (if still running) when destroyed.
// The port in heavy_server's "listening on ADDR:PORT" log line.
inline std::uint16_t listening_port(const std::string& output) {
  std::smatch m;
  static const std::regex line(R"(listening on (\S+):(\d+))");
  if (!std::regex_search(output, m, line)) throw std::runtime_error("no listening line: " + output);
  return static_cast<std::uint16_t>(std::stoi(m[2].str()));
}

class HeavyServerProcess {
 public:
  explicit HeavyServerProcess(std::vector<std::string> extra_args = {}, std::uint16_t port = 0) {
    std::vector<std::string> argv = {parker::test::program_path("heavy_server"), "--port", std::to_string(port)};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<parker::test::Process>(argv);
    if (!process_->wait_for_output("listening on ", 20s) || !process_->wait_for_output("\n", 1s)) {
      throw std::runtime_error("heavy_server did not start: " + process_->output());
    }
    port_ = listening_port(process_->output());
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] pid_t pid() const noexcept { return process_->pid(); }
  [[nodiscard]] parker::test::Process& process() noexcept { return *process_; }

  // Runs redis-cli against this server: `redis-cli -p PORT <args>`.
  [[nodiscard]] parker::test::CommandResult cli(const std::string& args) const {
    return parker::test::run_command("redis-cli -p " + std::to_string(port_) + " " + args, 30s);
  }
  // One INFO field's value, or empty.
  [[nodiscard]] std::string info_field(const std::string& field) const {
    const std::string out = cli("INFO").output;
    auto at = out.find("\n" + field + ":");
    if (at == std::string::npos) return {};
    at += field.size() + 2;
    auto end = out.find_first_of("\r\n", at);
    return out.substr(at, end - at);
  }

 private:
  std::unique_ptr<parker::test::Process> process_;
  std::uint16_t port_ = 0;
};

}  // namespace heavy::test
