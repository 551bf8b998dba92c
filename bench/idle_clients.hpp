// Many idle TCP client connections, held by helper processes so that no process goes near
// the fd limit (RLIMIT_NOFILE is 20000 here and cannot be raised): each holder opens at most
// kPerHolder connections, at most a few thousand per loopback source address (127.0.0.2,
// ...), so one listener can take far more than one address's ~28k ephemeral ports.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "parker/unique_fd.hpp"
#include "processes.hpp"

namespace parker::bench {

class Progress;

class IdleClients {
 public:
  static constexpr std::size_t kPerHolder = 19000;

  IdleClients() = default;
  ~IdleClients() { close_all(); }
  IdleClients(const IdleClients&) = delete;
  IdleClients& operator=(const IdleClients&) = delete;

  // Opens `count` more idle connections to ip:port and returns once all are connected
  // (the server may not have accepted them yet). Throws, naming the holder's error, if any
  // connection fails or the whole takes longer than `timeout`.
  void open(const std::string& ip, std::uint16_t port, std::size_t count,
            std::chrono::milliseconds timeout, Progress* progress = nullptr);

  // Sends PING on every connection (RESP) and counts the +PONG answers that come within
  // `timeout`: each holder pings all of its connections at once, then reads.
  [[nodiscard]] std::size_t ping_all(std::chrono::milliseconds timeout);

  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] std::vector<pid_t> pids() const;
  // Closes every connection (the holders exit).
  void close_all();

 private:
  struct Holder {
    ChildProcess process;
    UniqueFd status;   // holder -> us: "P n" progress lines, then "D n" or "E n message"
    UniqueFd control;  // us -> holder: 'p' pings every connection ("K answered"); EOF: exit
  };
  std::vector<Holder> holders_;
  std::size_t count_ = 0;
};

}  // namespace parker::bench
