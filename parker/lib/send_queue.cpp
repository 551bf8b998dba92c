#include "parker/send_queue.hpp"

#include <vector>

#include "parker/fd_passing.hpp"

namespace parker {

void SendQueue::push(OutgoingMessage message) {
  queued_bytes_ += message.bytes.size();
  ++pushed_;
  messages_.push_back(std::move(message));
}

Error SendQueue::flush(int socket) {
  std::vector<int> raw;
  while (!messages_.empty()) {
    OutgoingMessage& front = messages_.front();
    std::span<const std::byte> rest(front.bytes.data() + front_offset_,
                                    front.bytes.size() - front_offset_);
    raw.clear();
    if (front_offset_ == 0) {
      for (const auto& fd : front.fds) raw.push_back(fd.get());
      raw.insert(raw.end(), front.lent_fds.begin(), front.lent_fds.end());
    }
    auto sent = send_with_fds(socket, rest, raw);
    if (!sent.ok()) return sent.error;
    if (front_offset_ == 0) {
      front.fds.clear();  // delivered with the first byte: ours close
      front.lent_fds.clear();
    }
    front_offset_ += sent.value;
    queued_bytes_ -= sent.value;
    if (front_offset_ < front.bytes.size()) return Error{EAGAIN};  // short write: socket full
    messages_.pop_front();
    front_offset_ = 0;
    ++completed_;
  }
  return {};
}

std::vector<OutgoingMessage> SendQueue::take_unsent() {
  std::vector<OutgoingMessage> out;
  std::size_t first = front_offset_ == 0 ? 0 : 1;
  for (std::size_t i = first; i < messages_.size(); ++i) {
    queued_bytes_ -= messages_[i].bytes.size();
    out.push_back(std::move(messages_[i]));
  }
  messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(first), messages_.end());
  return out;
}

void SendQueue::clear() noexcept {
  pushed_ = completed_ = 0;
  messages_.clear();
  front_offset_ = 0;
  queued_bytes_ = 0;
}

}  // namespace parker
