#include "output_queue.hpp"

#include <algorithm>

namespace parker::daemon {

void OutputQueue::push(OutgoingMessage message) {
  shapes_.push_back({message.bytes.size(), static_cast<std::uint32_t>(message.fds.size())});
  queued_fds_ += message.fds.size();
  queue_.push(std::move(message));
}

OutputQueue::FlushResult OutputQueue::flush(int socket) {
  std::size_t before = queue_.queued_bytes();
  Error e = queue_.flush(socket);
  std::size_t sent = before - queue_.queued_bytes();
  FlushResult result{e, 0};
  while (sent > 0 && !shapes_.empty()) {
    Shape& front = shapes_.front();
    if (front_sent_ == 0) result.fds_sent += front.fds;  // they rode on the first byte
    std::size_t take = std::min(sent, front.bytes - front_sent_);
    front_sent_ += take;
    sent -= take;
    if (front_sent_ == front.bytes) {
      shapes_.pop_front();
      front_sent_ = 0;
    }
  }
  queued_fds_ -= result.fds_sent;
  return result;
}

std::vector<OutgoingMessage> OutputQueue::take_unsent() {
  auto unsent = queue_.take_unsent();
  std::size_t keep = front_sent_ > 0 ? 1 : 0;
  shapes_.erase(shapes_.begin() + static_cast<std::ptrdiff_t>(keep), shapes_.end());
  queued_fds_ = 0;
  return unsent;
}

std::size_t OutputQueue::clear() noexcept {
  std::size_t closed = queued_fds_;
  queue_.clear();
  shapes_.clear();
  front_sent_ = 0;
  queued_fds_ = 0;
  return closed;
}

}  // namespace parker::daemon
