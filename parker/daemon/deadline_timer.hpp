// DeadlineTimer: the idle deadlines of every parked connection, on ONE uv_timer.
//
// The heap (deadline_heap.hpp) orders the sockets by deadline; the timer is armed for the
// earliest one only, and re-armed (rearm_if_needed, once per loop iteration) only when the
// earliest changed — no timer per connection, O(log n) per park and per wake.
//
// Lifetime: like any libuv handle, close() it and let the loop run before destroying it.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

#include "deadline_heap.hpp"
#include "parked_socket.hpp"
#include "parked_table.hpp"

namespace parker::daemon {

class DeadlineTimer {
 public:
  // `on_expired` is called for each socket whose deadline passed, already out of the heap.
  using Expired = std::function<void(ParkedSocket&)>;

  explicit DeadlineTimer(ParkedTable& table) : table_(table), heap_(table) {}
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  void open(uv_loop_t* loop, Expired on_expired);
  void close() noexcept;

  void schedule(ParkedSocket& socket);
  void cancel(ParkedSocket& socket) noexcept;
  // Re-arms the timer if the earliest deadline changed since it was armed.
  void rearm_if_needed();

 private:
  static void on_timer(uv_timer_t* handle) noexcept;
  void rearm();

  uv_loop_t* loop_ = nullptr;
  uv_timer_t timer_{};
  bool open_ = false;
  Expired on_expired_;
  ParkedTable& table_;
  DeadlineHeap<ParkedTable> heap_;  // of fds
  std::uint64_t armed_ = 0;  // what timer_ is set for (0: stopped)
  bool dirty_ = false;
};

}  // namespace parker::daemon
