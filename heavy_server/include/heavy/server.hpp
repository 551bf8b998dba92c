// Server: heavy_server's service on one libuv loop — the listener, the connections, the
// keyspace, the channels, the counters, expiry, and graceful shutdown.
//
// Parking plugs in through five calls, so the parking code needs nothing else from here:
//   detach_connection(id, stand_in, max_blob)  an idle connection → its fd + session blob
//   adopt_connection(fd, blob, stand_in)       a socket handed back → served again, same session
//   detach_listener() / adopt_listener(fd)     the listening socket across a restart
//   for_each_quiet_since(cutoff, f)            connections without input since cutoff, oldest
//                                              first, in O(1) per connection visited
//   stats().parking                            the counters INFO reports
//
// Every handle is closed before the loop ends: after shutdown() completes (on_stopped runs),
// uv_run() returns once the close callbacks have run, and the Server may then be destroyed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "heavy/engine.hpp"
#include "heavy/keyspace.hpp"
#include "heavy/pubsub.hpp"
#include "heavy/resp_parser.hpp"
#include "heavy/stats.hpp"
#include "parker/unique_fd.hpp"

namespace heavy {

class Connection;
class Listener;

struct ServerOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6380;                 // 0: ephemeral
  std::size_t session_bytes = 256 * 1024;    // working set of each active session
  RespLimits limits;
  ClientLimits client_limits;                // timeout, query and output buffer limits
  std::uint64_t drain_timeout_ms = 5000;     // graceful shutdown: then close what is left
  // CLIENT IDs start here. The parking integration may use client ids as parker ids, which
  // must stay unique in the pool across restarts: a new process then starts above the last.
  std::uint64_t first_client_id = 1;
};

struct DetachedConnection {
  parker::UniqueFd fd;          // the client's socket, still open, no longer watched
  std::vector<std::byte> blob;  // its session (encode_session)
  std::uint64_t client_id = 0;
};

struct DetachResult {
  std::optional<DetachedConnection> detached;
  std::string_view error;  // why not: "no such client", "not idle", "session too large"
};

struct AdoptResult {
  Connection* connection = nullptr;  // served from now on
  std::string_view error;            // why not (the fd is then still the caller's)
};

class Server {
 public:
  Server(uv_loop_t* loop, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds options.bind:options.port and starts accepting. Empty string on success.
  [[nodiscard]] std::string listen();
  // Accepts on an already listening socket (handed over by a previous process).
  [[nodiscard]] std::string adopt_listener(parker::UniqueFd fd);
  // Stops accepting and gives the listening socket away (for the next process). Invalid if none.
  [[nodiscard]] parker::UniqueFd detach_listener() noexcept;
  // "127.0.0.1:6380", or empty when not listening.
  [[nodiscard]] std::string listening_address() const;

  // Graceful shutdown: stop accepting, let requests in progress finish and their replies go
  // out, close every connection (after options.drain_timeout_ms, by force), close the server's
  // own handles, then call on_stopped. A second call closes every connection at once.
  void shutdown() noexcept;
  void set_on_stopped(std::function<void()> on_stopped) { on_stopped_ = std::move(on_stopped); }
  [[nodiscard]] bool stopping() const noexcept { return stopping_; }

  // --- Parking integration ---
  // Takes a connection off the loop: rebinds its subscriptions to `stand_in` (or drops them
  // when null), serialises its session with whatever it has buffered (refusing when over
  // max_blob), frees its memory and hands over its socket. `any_moment` false: only an idle()
  // one (what the parking timer wants); true: any connection between two requests that is not
  // about to close (a graceful restart hands every one over, busy or not).
  [[nodiscard]] DetachResult detach_connection(std::uint64_t client_id, PubSubSink* stand_in = nullptr,
                                               std::size_t max_blob = SIZE_MAX, bool any_moment = false);
  // Serves `fd` again with the session in `blob`; subscriptions held by `stand_in` (if any) move
  // back to the connection, the others are subscribed afresh. Takes `fd` only on success: a bad
  // blob or a failure leaves it with the caller, still open (and changes nothing).
  [[nodiscard]] AdoptResult adopt_connection(parker::UniqueFd& fd, std::span<const std::byte> blob,
                                             PubSubSink* stand_in = nullptr);
  template <class F>
  void for_each_connection(F&& f) {
    for (auto& [id, conn] : connections_) f(*conn);
  }
  // Calls f(Connection&) for every connection whose last input came at or before `cutoff_ms`
  // (loop time, uv_now), oldest first, stopping at the first more recent one: a parking timer
  // visits only the candidates, never the busy connections. f may close or detach the
  // connection it is given (and no other).
  template <class F>
  void for_each_quiet_since(std::uint64_t cutoff_ms, F&& f) {
    for (Connection* c = oldest_; c != nullptr && last_input_of(*c) <= cutoff_ms;) {
      Connection* next = newer_of(*c);
      f(*c);
      c = next;
    }
  }
  [[nodiscard]] Connection* find_connection(std::uint64_t client_id) const;
  [[nodiscard]] std::size_t connection_count() const noexcept { return connections_.size(); }

  [[nodiscard]] uv_loop_t* loop() const noexcept { return loop_; }
  [[nodiscard]] const ServerOptions& options() const noexcept { return options_; }
  [[nodiscard]] Engine& engine() noexcept { return engine_; }
  [[nodiscard]] Keyspace& keyspace() noexcept { return keyspace_; }
  [[nodiscard]] PubSub& pubsub() noexcept { return pubsub_; }
  [[nodiscard]] ServerStats& stats() noexcept { return stats_; }
  [[nodiscard]] ServerIdentity& identity() noexcept { return identity_; }

  // --- For Connection ---
  void forget(Connection& conn) noexcept;      // it is closing or detaching
  void queue_flush(Connection* conn);          // it has output queued by a delivery
  void mark_active(Connection& conn) noexcept;  // it received input: move it to the newest end

 private:
  static void on_sweep(uv_timer_t* timer) noexcept;
  void close_timed_out() noexcept;
  static void on_check(uv_check_t* check) noexcept;
  static void on_drain_timeout(uv_timer_t* timer) noexcept;
  static void on_handle_closed(uv_handle_t* handle) noexcept;

  [[nodiscard]] std::string start_listener(parker::UniqueFd fd);
  void accept_pending() noexcept;
  void accept_one(parker::UniqueFd fd) noexcept;
  [[nodiscard]] Session new_session() noexcept;
  void close_all_connections() noexcept;
  void maybe_finish() noexcept;
  void register_connection(Connection* conn);
  void unlink_activity(Connection& conn) noexcept;
  static std::uint64_t last_input_of(const Connection& conn) noexcept;
  static Connection* newer_of(const Connection& conn) noexcept;

  uv_loop_t* loop_;
  ServerOptions options_;
  Keyspace keyspace_;
  PubSub pubsub_;
  ServerStats stats_;
  ServerIdentity identity_;
  Engine engine_;

  Listener* listener_ = nullptr;
  std::unordered_map<std::uint64_t, Connection*> connections_;
  std::vector<Connection*> flush_queue_;
  Connection* oldest_ = nullptr;  // the activity list: least recent input first
  Connection* newest_ = nullptr;
  std::uint64_t next_client_id_ = 1;
  parker::UniqueFd spare_fd_;  // closed to accept-and-drop when out of descriptors (EMFILE)

  uv_timer_t sweep_timer_{};
  uv_check_t flush_check_{};
  uv_timer_t drain_timer_{};
  int open_handles_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
  std::function<void()> on_stopped_;
};

}  // namespace heavy
