// Listener: the listening socket, watched with a uv_poll_t so that — like a Connection — its
// fd stays ours and can be handed to the next process on a graceful restart (detach()).
//
// Lifetime as for every uv handle wrapper here: heap-allocated, not copyable or movable,
// deleted in its close callback.
#pragma once

#include <uv.h>

#include <functional>

#include "parker/unique_fd.hpp"

namespace heavy {

class Listener {
 public:
  using AcceptReady = std::function<void()>;

  // Watches `fd` (a listening, non-blocking socket); `on_ready` runs when connections wait.
  // nullptr when the watcher cannot be started (fd is then closed).
  static Listener* start(uv_loop_t* loop, parker::UniqueFd fd, AcceptReady on_ready);

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // Stops listening and closes the socket.
  void close() noexcept;
  // Stops watching and gives the still-listening socket to the caller.
  [[nodiscard]] parker::UniqueFd detach() noexcept;

 private:
  Listener(parker::UniqueFd fd, AcceptReady on_ready) : fd_(std::move(fd)), on_ready_(std::move(on_ready)) {}
  ~Listener() = default;
  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;

  uv_poll_t poll_{};
  parker::UniqueFd fd_;
  AcceptReady on_ready_;
  bool closing_ = false;
};

}  // namespace heavy
