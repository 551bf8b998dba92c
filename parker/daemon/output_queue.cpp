#include "output_queue.hpp"

#include <algorithm>

#include "parker/fd_passing.hpp"

namespace parker::daemon {

void OutputQueue::push(OutgoingFrame frame) {
  queued_bytes_ += frame.bytes.size();
  queued_fds_ += frame.fds.size();
  if (frame.wakes.empty()) queued_returned_fds_ += frame.fds.size();
  frames_.push_back(std::move(frame));
}

OutputQueue::FlushResult OutputQueue::flush(int socket) {
  FlushResult result;
  std::vector<int> raw;
  while (!frames_.empty()) {
    OutgoingFrame& front = frames_.front();
    std::span<const std::byte> rest(front.bytes.data() + front_sent_, front.bytes.size() - front_sent_);
    raw.clear();
    if (front_sent_ == 0) {
      for (const auto& fd : front.fds) raw.push_back(fd.get());
      if (front.fds.empty()) raw = front.lent_fds;
    }
    auto sent = send_with_fds(socket, rest, raw);
    if (!sent.ok()) {
      result.error = sent.error;
      return result;
    }
    if (front_sent_ == 0 && !owns_fds_of_started(front)) {
      // Delivered with the first byte: the peer has its copies, ours close.
      for (const protocol::WakeRecord& w : front.wakes) result.handed_ids.push_back(w.id);
      result.fds_released += front.fds.size();
      queued_fds_ -= front.fds.size();
      if (front.wakes.empty()) queued_returned_fds_ -= front.fds.size();
      front.fds.clear();
    }
    front_sent_ += sent.value;
    queued_bytes_ -= sent.value;
    result.bytes_written += sent.value;
    if (front_sent_ < front.bytes.size()) {
      result.error = Error{EAGAIN};  // short write: the socket is full
      return result;
    }
    if (owns_fds_of_started(front)) {
      queued_fds_ -= front.fds.size();
      result.written_wakes.push_back({std::move(front.wakes), std::move(front.fds), std::move(front.woken_ns)});
    }
    if (front.confirms_parks != 0) result.parks_confirmed = std::max(result.parks_confirmed, front.confirms_parks);
    frames_.pop_front();
    front_sent_ = 0;
  }
  return result;
}

// Takes out of the queue, in order, every frame `removes(frame, started)` says so of
// (`started`: the front frame, partly written), keeping the counts true.
template <class Removes>
void OutputQueue::remove_frames(Removes removes) {
  std::deque<OutgoingFrame> kept;
  for (std::size_t i = 0; i < frames_.size(); ++i) {
    OutgoingFrame& f = frames_[i];
    const bool started = i == 0 && front_sent_ > 0;
    const std::size_t fds = f.fds.size();
    const bool returned = f.wakes.empty();
    if (!removes(f, started)) {
      kept.push_back(std::move(f));
      continue;
    }
    queued_fds_ -= fds;
    if (returned) queued_returned_fds_ -= fds;
    queued_bytes_ -= f.bytes.size() - (started ? front_sent_ : 0);
    if (started) front_sent_ = 0;
  }
  frames_.swap(kept);
}

std::vector<WakeItem> OutputQueue::take_wakes(bool include_started) {
  std::vector<WakeItem> taken;
  remove_frames([&](OutgoingFrame& f, bool started) {
    if (!holds_wakes(f) || (started && !include_started)) return false;
    for (std::size_t k = 0; k < f.fds.size(); ++k) {
      taken.push_back(WakeItem{std::move(f.wakes[k]), std::move(f.fds[k]), k < f.woken_ns.size() ? f.woken_ns[k] : 0});
    }
    return true;
  });
  return taken;
}

std::vector<protocol::CloseRecord> OutputQueue::take_closes(bool include_started) {
  std::vector<protocol::CloseRecord> taken;
  remove_frames([&](OutgoingFrame& f, bool started) {
    if (f.closes.empty() || (started && !include_started)) return false;
    taken.insert(taken.end(), f.closes.begin(), f.closes.end());
    return true;
  });
  return taken;
}

std::size_t OutputQueue::drop_all_but_deliveries() noexcept {
  std::size_t closed = 0;
  remove_frames([&](const OutgoingFrame& f, bool /*started*/) {
    if (holds_wakes(f) || !f.closes.empty()) return false;
    closed += f.fds.size();  // they close with the frame
    return true;
  });
  return closed;
}

std::size_t OutputQueue::clear() noexcept {
  std::size_t closed = queued_fds_;
  frames_.clear();
  front_sent_ = 0;
  queued_bytes_ = 0;
  queued_fds_ = 0;
  queued_returned_fds_ = 0;
  return closed;
}

}  // namespace parker::daemon
