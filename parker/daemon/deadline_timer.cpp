#include "deadline_timer.hpp"

#include <optional>

namespace parker::daemon {

void DeadlineTimer::open(uv_loop_t* loop, Expired on_expired) {
  loop_ = loop;
  on_expired_ = std::move(on_expired);
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  open_ = true;
}

void DeadlineTimer::close() noexcept {
  if (!open_) return;
  open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void DeadlineTimer::schedule(ParkedSocket& socket) {
  const auto fd = static_cast<std::uint32_t>(table_.fd_of(socket));
  heap_.push(fd);
  if (heap_.top() == fd) dirty_ = true;
}

void DeadlineTimer::cancel(ParkedSocket& socket) noexcept {
  if (socket.index == kNotInHeap) return;
  const auto fd = static_cast<std::uint32_t>(table_.fd_of(socket));
  bool was_top = heap_.top() == fd;
  heap_.erase(fd);
  if (was_top) dirty_ = true;
}

void DeadlineTimer::rearm_if_needed() {
  if (dirty_) rearm();
}

void DeadlineTimer::rearm() {
  dirty_ = false;
  if (!open_) return;
  std::optional<std::uint32_t> first = heap_.top();
  if (!first) {
    if (armed_ != 0) uv_timer_stop(&timer_);
    armed_ = 0;
    return;
  }
  const std::uint64_t deadline = heap_.deadline_of(*first);
  if (deadline == armed_) return;
  armed_ = deadline;
  std::uint64_t now = uv_now(loop_);
  uv_timer_start(&timer_, on_timer, deadline > now ? deadline - now : 0, 0);
}

void DeadlineTimer::on_timer(uv_timer_t* handle) noexcept {
  auto* self = static_cast<DeadlineTimer*>(handle->data);
  self->armed_ = 0;
  std::uint64_t now = uv_now(self->loop_);
  while (std::optional<std::uint32_t> fd = self->heap_.pop_expired(now)) self->on_expired_(self->table_[*fd]);
  self->rearm();
}

}  // namespace parker::daemon
