// Parking: heavy_server's side of parker. Idle connections go to parker with their session in
// the state blob; they come back (woken) with it and are served as if nothing happened.
//
//   * One uv_timer scans Server::for_each_quiet_since(now - park_after): only connections
//     quiet that long are visited, never the busy ones. An idle() one (nothing buffered either
//     way, no partial request) is detached, its session serialised, its memory freed, and its
//     socket parked under its client id.
//   * What stays here per parked connection is an index entry: id → stand-in pointer (null
//     unless it is subscribed). A subscriber's ParkedSubscriber keeps it in the channel
//     registry, so PUBLISH counts it and recalls it.
//   * A wake restores the session (Server::adopt_connection) and the waiting request is read
//     as usual. CLOSED (the client hung up while parked) frees the entry.
//   * Parker does not send the blob back with a refused park, so each blob is kept until
//     parker has certainly processed its PARK: after every batch of parks we RECALL an id
//     never used (a barrier); parker answers it with ERROR unknown_id once everything before
//     it is done, since it handles a session's frames in order and replies in order.
//   * A park that fails (no session, no credit, refused) leaves the connection served here;
//     it is tried again after another park_after.
//   * Graceful restart (begin_handover): stop accepting, let requests in progress finish, park
//     every connection, then the listening socket (blob: the ids left parked), wait for the
//     barrier, and let the server stop. The next process recalls the listener at start.
//
// Lifetime: like Server — its uv handles must be closed (close()) and the loop run before it
// is destroyed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "heavy/parked_subscriber.hpp"
#include "heavy/server.hpp"
#include "parker/client_uv.hpp"

namespace heavy {

struct ParkingOptions {
  std::string socket_path;
  std::string pool = "heavy_server";
  std::uint64_t park_after_ms = 1000;
  std::uint64_t startup_timeout_ms = 1000;   // waiting for parker's listener before listening afresh
  std::uint64_t handover_timeout_ms = 5000;  // graceful restart: then give up on busy connections
};

// Ids in the pool that are not client ids (client ids stay below 2^63).
inline constexpr std::uint64_t kListenerParkId = UINT64_MAX;
inline constexpr std::uint64_t kBarrierIdBase = 0xFFFF'FFFF'0000'0000;

class Parking {
 public:
  // Called once at start with the listener a previous process parked, or an invalid fd:
  // listen afresh.
  using ListenerReady = std::function<void(parker::UniqueFd listener)>;

  Parking(Server& server, ParkingOptions options);
  ~Parking();
  Parking(const Parking&) = delete;
  Parking& operator=(const Parking&) = delete;

  // Connects to parker, asks for a listener left by a previous process and reports it (or
  // none: parker unreachable, nothing parked, no answer in startup_timeout_ms) through
  // on_listener, exactly once. Parking works from then on whenever parker is reachable.
  void start(ListenerReady on_listener);

  // Graceful restart; on_done runs once everything is parked (or after handover_timeout_ms),
  // and the caller then shuts the server down. False (nothing started) without parker.
  [[nodiscard]] bool begin_handover(std::function<void()> on_done);

  // Closes the client and the timers. Idempotent; run the loop afterwards.
  void close() noexcept;

  [[nodiscard]] std::size_t parked_count() const noexcept { return parked_.size(); }

 private:
  enum class Phase { starting, serving, handing_over, done };
  struct Unconfirmed {
    std::uint64_t barrier = 0;  // the barrier that follows its PARK
    std::vector<std::byte> blob;
  };

  static void on_scan(uv_timer_t* timer) noexcept;
  static void on_phase_timer(uv_timer_t* timer) noexcept;
  static void on_handle_closed(uv_handle_t* handle) noexcept;

  // parker::Client callbacks
  void connected(const parker::protocol::Welcome& welcome);
  void disconnected(parker::Error error, std::chrono::milliseconds retry_in);
  void woken(parker::WokenConnection woken);
  void closed_by_parker(std::uint64_t id, parker::protocol::CloseReason reason);
  void rejected(parker::RejectedPark park);
  void error_from_parker(const parker::protocol::ErrorMessage& error);

  void scan();
  void park_one(Connection& conn);
  void end_batch();
  void confirm(std::uint64_t barrier);
  Connection* restore(parker::UniqueFd fd, std::span<const std::byte> blob, std::uint64_t id);
  void forget_entry(std::uint64_t id);
  void forget_all_entries();
  void decide_listener(parker::UniqueFd fd);
  void listener_woken(parker::UniqueFd fd, std::string_view blob);
  void park_listener();
  void maybe_finish_handover();
  void finish_handover();
  void update_gauge() noexcept;
  void set_scan_interval(std::uint64_t ms) noexcept;

  Server& server_;
  ParkingOptions options_;
  parker::UvClientPtr client_;
  uv_timer_t scan_timer_{};
  uv_timer_t phase_timer_{};  // startup wait, then the handover deadline
  int open_handles_ = 0;
  bool closed_ = false;
  Phase phase_ = Phase::starting;
  bool warned_unavailable_ = false;

  // The index: one entry per connection parked in our pool (stand-in only for subscribers).
  std::unordered_map<std::uint64_t, std::unique_ptr<ParkedSubscriber>> parked_;
  std::unordered_map<std::uint64_t, Unconfirmed> unconfirmed_;
  std::uint64_t barriers_sent_ = 0;
  std::uint64_t barriers_confirmed_ = 0;
  bool batch_open_ = false;
  bool out_of_credit_counted_ = false;
  std::function<void(std::uint64_t)> recall_;  // what a ParkedSubscriber calls

  ListenerReady on_listener_;
  std::function<void()> on_handover_done_;
  parker::UniqueFd listener_;  // handover: detached from the server, not parked yet
  bool listener_parked_ = false;
  bool handover_deadline_passed_ = false;
};

}  // namespace heavy
