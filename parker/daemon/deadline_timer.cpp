#include "deadline_timer.hpp"

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
  heap_.push(socket);
  if (heap_.top() == &socket) dirty_ = true;
}

void DeadlineTimer::cancel(ParkedSocket& socket) noexcept {
  bool was_top = heap_.top() == &socket;
  heap_.erase(socket);
  if (was_top) dirty_ = true;
}

void DeadlineTimer::rearm_if_needed() {
  if (dirty_) rearm();
}

void DeadlineTimer::rearm() {
  dirty_ = false;
  if (!open_) return;
  ParkedSocket* first = heap_.top();
  if (first == nullptr) {
    if (armed_ != 0) uv_timer_stop(&timer_);
    armed_ = 0;
    return;
  }
  if (first->deadline == armed_) return;
  armed_ = first->deadline;
  std::uint64_t now = uv_now(loop_);
  uv_timer_start(&timer_, on_timer, first->deadline > now ? first->deadline - now : 0, 0);
}

void DeadlineTimer::on_timer(uv_timer_t* handle) noexcept {
  auto* self = static_cast<DeadlineTimer*>(handle->data);
  self->armed_ = 0;
  std::uint64_t now = uv_now(self->loop_);
  while (ParkedSocket* s = self->heap_.pop_expired(now)) self->on_expired_(*s);
  self->rearm();
}

}  // namespace parker::daemon
