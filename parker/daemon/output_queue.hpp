// OutputQueue: a SendQueue that also counts the fds it still owns, so that parker's fd
// capacity is released exactly when a WAKE or REJECTED frame's fds leave the process.
//
// SendQueue delivers a message's fds with its first byte; this wrapper mirrors each queued
// message's size and fd count and, after each flush, works out from the bytes that went
// which messages have started (their fds are gone from parker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "parker/send_queue.hpp"

namespace parker::daemon {

class OutputQueue {
 public:
  void push(OutgoingMessage message);

  struct FlushResult {
    Error error;              // ok, EAGAIN (socket full), or the socket's error
    std::size_t fds_sent = 0; // fds that left parker in this flush
  };
  [[nodiscard]] FlushResult flush(int socket);

  // Messages of which nothing was sent yet, with their fds (see SendQueue::take_unsent).
  [[nodiscard]] std::vector<OutgoingMessage> take_unsent();
  // Drops everything still queued; returns how many fds that closed.
  std::size_t clear() noexcept;

  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return queue_.queued_bytes(); }
  [[nodiscard]] std::size_t queued_fds() const noexcept { return queued_fds_; }

 private:
  struct Shape {
    std::size_t bytes;
    std::uint32_t fds;
  };
  SendQueue queue_;
  std::deque<Shape> shapes_;      // one per message in queue_, same order
  std::size_t front_sent_ = 0;    // bytes of the front message already sent
  std::size_t queued_fds_ = 0;    // fds of messages not yet started
};

}  // namespace parker::daemon
