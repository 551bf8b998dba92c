// A libuv loop for client tests: run it until a condition holds (bounded), with a hook run
// every few milliseconds (to pump a fake parker), and close it properly at the end —
// checking, as libuv's own tests do, that every handle was closed (uv_loop_close() == 0).
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>

#include <catch2/catch.hpp>

#include "support/fd_count.hpp"

namespace parker::test {

// open_fd_count() once libuv's process-wide fds exist: the first uv_loop_init() opens a
// pipe for its signal handling that stays open for the life of the process.
inline std::size_t fd_baseline_with_libuv() {
  uv_loop_t warm{};
  REQUIRE(uv_loop_init(&warm) == 0);
  REQUIRE(uv_loop_close(&warm) == 0);
  return open_fd_count();
}

class TestLoop {
 public:
  TestLoop() { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~TestLoop() {
    // Let pending close callbacks run, then close; a handle left open is a test failure.
    for (int i = 0; i < 1000 && uv_loop_alive(&loop_) != 0; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
    int rc = uv_loop_close(&loop_);
    CHECK(rc == 0);
    if (rc != 0) {
      // Close what is left so the loop memory can go; the CHECK above already failed.
      uv_walk(&loop_, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
    }
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  [[nodiscard]] uv_loop_t* get() noexcept { return &loop_; }

  // Runs the loop until `done()` or `timeout`; `every_tick` (if set) runs every ~2 ms.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                 const std::function<void()>& every_tick = {}) {
    struct Guard {
      uv_timer_t timer{};
      const std::function<void()>* tick = nullptr;
    };
    auto* guard = new Guard;
    guard->tick = &every_tick;
    guard->timer.data = guard;
    uv_timer_init(&loop_, &guard->timer);
    // The timer also makes sure uv_run(ONCE) returns even when nothing else happens.
    uv_timer_start(&guard->timer, [](uv_timer_t* t) {
      auto* g = static_cast<Guard*>(t->data);
      if (g->tick != nullptr && *g->tick) (*g->tick)();
    }, 2, 2);
    auto end = std::chrono::steady_clock::now() + timeout;
    bool ok = done();
    while (!ok && std::chrono::steady_clock::now() < end) {
      uv_run(&loop_, UV_RUN_ONCE);
      ok = done();
    }
    guard->tick = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&guard->timer),
             [](uv_handle_t* h) { delete static_cast<Guard*>(h->data); });
    uv_run(&loop_, UV_RUN_NOWAIT);  // runs the guard's close callback
    return ok;
  }

 private:
  uv_loop_t loop_{};
};

}  // namespace parker::test
