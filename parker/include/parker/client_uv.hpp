// parker::UvClient — parker::Client driven by a libuv loop: the way a libuv server parks idle
// connections with parker.
//
// It watches the connection to parker (uv_poll_t), times reconnects and the HELLO timeout
// (uv_timer_t), and flushes the parks, recalls and drops queued during a loop iteration once,
// just before the loop waits for I/O again (uv_prepare_t) — so a burst of park() calls goes
// out as a few PARK frames of up to 253 fds. It reconnects with exponential back-off
// (50 ms doubling to 5 s by default) when parker is not running yet or restarts, and says
// HELLO again; the pool's parked connections are kept by parker meanwhile.
//
// Lifetime: create() gives a UvClientPtr. Resetting it (or calling close()) stops the client;
// its memory is freed by libuv close callbacks, so keep running the loop afterwards (as for
// any handle) and destroy the pointer before uv_loop_close(). Callbacks run on the loop
// thread, never after close() (except parks given back during close() itself); they must
// not throw.
//
// Example:
//
//   parker::ClientCallbacks callbacks;
//   callbacks.on_wake = [&](parker::WokenConnection woken) {
//     // The client socket is ours again, with the state we parked it with; its bytes are
//     // still unread. Give it a uv handle again:
//     auto* tcp = new uv_tcp_t;
//     uv_tcp_init(loop, tcp);
//     uv_tcp_open(tcp, woken.fd.release());
//     server.resume(tcp, woken.id, woken.blob);
//   };
//   callbacks.on_rejected = [&](parker::RejectedPark park) {
//     server.resume_unparked(std::move(park.fd), park.id, park.blob);   // never lost
//   };
//   callbacks.on_disconnected = [](parker::Error e, std::chrono::milliseconds retry_in) {
//     spdlog::warn("parker: {} (retrying in {} ms)", parker::describe(e), retry_in.count());
//   };
//   parker::UvClientPtr parker_client = parker::UvClient::create(loop, std::move(callbacks));
//   parker_client->connect(parker::default_socket_path(), "heavy_server");
//
//   // A connection went idle (nothing unprocessed in our buffers): hand parker a duplicate of
//   // its fd, then close the uv handle — that closes only the original fd, and the duplicate
//   // keeps the connection open while it travels to parker.
//   uv_os_fd_t raw;
//   uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &raw);
//   parker::UniqueFd fd(::fcntl(raw, F_DUPFD_CLOEXEC, 0));
//   if (parker_client->park(fd, id, session.serialise(), {}).ok()) {
//     uv_close(reinterpret_cast<uv_handle_t*>(tcp), free_tcp);       // parked
//   }  // else (ENOTCONN, ENOBUFS...): `fd`, the duplicate, closes itself; keep serving `tcp`
//
//   parker_client.reset();   // at shutdown; then let uv_run() finish
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "parker/client.hpp"

namespace parker {

class UvClient;

// Closes the client when the owning pointer lets go; libuv frees it in its close callbacks.
struct UvClientCloser {
  void operator()(UvClient* client) const noexcept;
};
using UvClientPtr = std::unique_ptr<UvClient, UvClientCloser>;

class UvClient final : private ClientLoop {
 public:
  // A client bound to `loop` (which must outlive it). Does not connect yet.
  [[nodiscard]] static UvClientPtr create(uv_loop_t* loop, ClientCallbacks callbacks);

  UvClient(const UvClient&) = delete;
  UvClient& operator=(const UvClient&) = delete;
  UvClient(UvClient&&) = delete;
  UvClient& operator=(UvClient&&) = delete;

  // See Client: the same calls, the same errors.
  Error connect(std::string_view path, std::string_view pool, const ClientOptions& options = {}) {
    return closing_ ? Error{EBADF} : core_.connect(path, pool, options);
  }
  Error park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& options = {}) {
    return core_.park(fd, id, blob, options);
  }
  Error recall(std::uint64_t id) { return core_.recall(id); }
  Error drop(std::uint64_t id) { return core_.drop(id); }
  Error acknowledge(std::uint64_t seq) { return core_.acknowledge(seq); }
  Error request_inventory() { return core_.request_inventory(); }
  Error leave() { return core_.leave(); }
  Error write(std::vector<std::uint64_t> ids, std::string payload, std::uint64_t* number = nullptr) {
    return core_.write(std::move(ids), std::move(payload), number);
  }
  Error declare_keepalive_rules(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules) {
    return core_.declare_keepalive_rules(set, std::move(rules));
  }

  // Stops for good: parks not sent yet come back through on_rejected before it returns, and
  // the handles start closing. Idempotent. The object stays valid until its UvClientPtr is
  // reset and the loop has run the close callbacks.
  void close() noexcept;

  [[nodiscard]] bool connected() const noexcept { return core_.connected(); }
  [[nodiscard]] std::uint32_t credit() const noexcept { return core_.credit(); }
  [[nodiscard]] std::size_t unconfirmed_parks() const noexcept { return core_.unconfirmed_parks(); }
  [[nodiscard]] const Client& core() const noexcept { return core_; }
  [[nodiscard]] uv_loop_t* loop() const noexcept { return loop_; }

 private:
  friend struct UvClientCloser;
  struct PollWatch;

  UvClient(uv_loop_t* loop, ClientCallbacks callbacks);
  ~UvClient() override;

  // ClientLoop: what the core asks of the loop.
  void watch(int fd, bool writable) noexcept override;
  void unwatch(int fd) noexcept override;
  void set_timer(std::optional<std::chrono::milliseconds> delay) noexcept override;
  void flush_needed() noexcept override;

  void close_watch() noexcept;
  void delete_when_done() noexcept;
  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  static void on_timer(uv_timer_t* handle) noexcept;
  static void on_prepare(uv_prepare_t* handle) noexcept;
  static void on_handle_closed(uv_handle_t* handle) noexcept;
  static void on_watch_closed(uv_handle_t* handle) noexcept;

  uv_loop_t* loop_;
  Client core_;
  uv_timer_t timer_{};
  uv_prepare_t prepare_{};
  PollWatch* watch_ = nullptr;  // the current connection's poll handle (a new one per connection)
  int handles_open_ = 2;        // timer_ and prepare_, until their close callbacks
  int watches_closing_ = 0;     // poll handles whose close callback has not run yet
  Error watch_error_;           // uv_poll_init/start failed: the connection is abandoned
  bool closing_ = false;
  bool owner_released_ = false;
};

}  // namespace parker
