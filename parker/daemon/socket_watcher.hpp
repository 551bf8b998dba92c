// SocketWatcher: one kernel readiness set (epoll on Linux, kqueue on the BSDs and macOS)
// holding every parked socket, itself watched by libuv through a single uv_poll.
//
// Why not a uv_poll per parked socket: uv_poll_init probes each fd with an epoll ADD and
// DEL and switches the fd to non-blocking (an ioctl, and a flag the owner shares, which
// must then be read and restored): four syscalls beyond the one registration that
// watching needs, and 160 bytes of uv_poll_t per connection. With this set a park costs
// one registration (EPOLL_CTL_ADD), a wake one deregistration, and a parked socket needs
// no libuv handle (so no close callback either: it is freed when it is retired).
//
// Level-triggered: a socket with data already waiting is reported by the next wait.
// Each ready socket is reported at most once per batch, and a callback may only retire
// the socket it was called for.
#pragma once

#include <uv.h>

#include <cstddef>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker::daemon {

class SocketWatcher {
 public:
  // `on_ready(context, fd, error)`: the socket is readable or hung up; `error` when the
  // kernel flagged an error condition on it.
  using ReadyCallback = void (*)(void* context, int fd, bool error);

  SocketWatcher() = default;
  SocketWatcher(const SocketWatcher&) = delete;
  SocketWatcher& operator=(const SocketWatcher&) = delete;

  [[nodiscard]] Error open(uv_loop_t* loop, ReadyCallback on_ready, void* context);
  // Stops watching (uv_close on the poll; its memory is ours, no callback needed).
  void close() noexcept;

  // Starts watching `fd` for readable / hang-up / error.
  [[nodiscard]] Error add(int fd) noexcept;
  // Stops watching it; call before the fd is closed or handed away.
  void remove(int fd) noexcept;
  // Edge-triggered while a keep-alive request is partly there (keepalive_rules.hpp): the
  // bytes already waiting are not reported again, only new ones; back to level-triggered
  // after. Fails only if the socket is not in the set.
  [[nodiscard]] Error set_edge_triggered(int fd, bool edge) noexcept;

 private:
  static void on_backend_ready(uv_poll_t* handle, int status, int events) noexcept;
  void drain() noexcept;

  uv_poll_t poll_{};
  UniqueFd backend_;
  ReadyCallback on_ready_ = nullptr;
  void* context_ = nullptr;
  bool open_ = false;
};

}  // namespace parker::daemon
