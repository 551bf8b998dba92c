// BusyClients: connections that never go quiet, for the restart scenario. Each keeps one
// PING in flight, sending the next as soon as PONG arrives, on a thread of its own (one
// poll() over all of them), and counts what a client would notice: replies, the longest wait
// for one, and connections that ended or answered wrong.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "parker/unique_fd.hpp"

namespace parker::bench {

class BusyClients {
 public:
  struct Counts {
    std::uint64_t replies = 0;
    std::size_t dropped = 0;         // connections that ended, failed or answered wrong
    double longest_wait_ms = 0;      // longest time one PING waited for its PONG
  };

  // Connects `count` clients to 127.0.0.1:port (throws if one fails) and starts pinging.
  BusyClients(std::uint16_t port, std::size_t count);
  ~BusyClients();
  BusyClients(const BusyClients&) = delete;
  BusyClients& operator=(const BusyClients&) = delete;

  // Forgets the longest wait so far (call before the moment to measure).
  void reset_longest_wait() noexcept { reset_wait_.store(true); }
  // Stops the thread and reports; the connections stay open until destruction.
  [[nodiscard]] Counts stop();

 private:
  void run() noexcept;

  std::vector<UniqueFd> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reset_wait_{false};
  Counts counts_;
  std::thread thread_;
};

}  // namespace parker::bench
