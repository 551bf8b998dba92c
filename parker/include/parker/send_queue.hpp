// SendQueue: outgoing messages for a non-blocking stream socket, each a run of bytes with
// fds riding on its first byte.
//
// Ownership: the queue owns a message's fds until the first byte of that message has been
// sent; from then on the receiver holds its own copies and ours are closed. Messages not yet
// started can be taken back (take_unsent) so that a caller whose connection died gets every
// fd it handed over returned to it rather than lost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker {

struct OutgoingMessage {
  std::vector<std::byte> bytes;  // never empty
  std::vector<UniqueFd> fds;     // at most kMaxFdsPerMessage, closed once delivered
  // Instead of `fds`: fds the caller keeps open and keeps owning (it wants its copies after
  // the send, e.g. until the receiver confirms). Sent the same way; never closed here.
  std::vector<int> lent_fds;
};

class SendQueue {
 public:
  // Queues a message; `message.bytes` must not be empty.
  void push(OutgoingMessage message);

  // Writes as much as the socket accepts. Returns ok when everything went, EAGAIN when the
  // socket is full (wait until it is writable and call again), or the socket's error.
  [[nodiscard]] Error flush(int socket);

  [[nodiscard]] bool empty() const noexcept { return messages_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return messages_.size(); }
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  // Messages pushed and messages written whole since construction (or clear()): the n-th
  // message pushed (counting from 0) has been written whole iff n < completed().
  [[nodiscard]] std::uint64_t pushed() const noexcept { return pushed_; }
  [[nodiscard]] std::uint64_t completed() const noexcept { return completed_; }

  // Removes and returns the messages of which nothing has been sent yet, with their fds.
  // A partly sent message (its fds already delivered) stays and is dropped by clear().
  [[nodiscard]] std::vector<OutgoingMessage> take_unsent();
  void clear() noexcept;

 private:
  std::deque<OutgoingMessage> messages_;
  std::size_t front_offset_ = 0;  // bytes of messages_.front() already sent
  std::size_t queued_bytes_ = 0;
  std::uint64_t pushed_ = 0;
  std::uint64_t completed_ = 0;
};

}  // namespace parker
