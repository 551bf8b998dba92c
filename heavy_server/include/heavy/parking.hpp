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
//   * Talking to parked clients without waking them (protocol 1.1): PUBLISH to a parked
//     subscriber goes to parker as a WRITE — one per message, naming every parked subscriber
//     it goes to (batched in one loop iteration, sent before the loop waits) — and parker
//     writes it to their sockets. Parked connections answer PING by keep-alive rule: set 1
//     (+PONG) for plain connections, set 2 (the subscribed-mode pong) for subscribers, RESP
//     and inline forms, declared on every session. Exactly once: what parker reports not
//     written goes out through the connection when it is back, in order (parked_subscriber.hpp).
//   * Nothing is ever lost in flight (protocol 1.1): every park parker refuses, and every park
//     it has not confirmed when the session ends, comes back through on_rejected with its fd
//     and blob, and is served here again (tried again after another park_after). A wake is
//     acknowledged once restored; one this process never acknowledged (it was stopped, or
//     died) is parker's still, and goes to the next process of the pool.
//   * The index is rebuilt from parker's INVENTORY on every session: at start (connections a
//     previous process left parked, subscribers registered from their blobs so PUBLISH counts
//     them) and after reconnecting (entries parker no longer holds are forgotten).
//   * Graceful restart (begin_handover): stop accepting, let requests in progress finish, park
//     every connection, then the listening socket; once parker has confirmed every park, leave
//     the session (GOODBYE): wakes that reach us after that stay parker's and go to the next
//     process. Then the server stops. The next process finds the listener in the inventory and
//     recalls it.
//
// Lifetime: like Server — its uv handles must be closed (close()) and the loop run before it
// is destroyed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "heavy/parked_subscriber.hpp"
#include "heavy/server.hpp"
#include "parker/client_sharded_uv.hpp"

namespace heavy {

struct ParkingOptions {
  // One parker, or several (shards): the pool is spread over them (parker::UvShardedClient).
  std::vector<std::string> socket_paths;
  std::string pool = "heavy_server";
  std::uint64_t park_after_ms = 1000;
  // At start, how long each answer from parker may take (its welcome, each inventory batch,
  // the listener it holds) before we listen afresh without it: only a parker that is up but
  // stuck costs this (one that is down refuses the connection at once).
  std::uint64_t startup_timeout_ms = 5000;
  std::uint64_t handover_timeout_ms = 5000;  // graceful restart: then give up on busy connections
};

// The id of the listening socket parked across a graceful restart (client ids stay below 2^63).
inline constexpr std::uint64_t kListenerParkId = UINT64_MAX;

class Parking final : private WriteThrough {
 public:
  // Called once at start with the listener a previous process parked, or an invalid fd:
  // listen afresh.
  using ListenerReady = std::function<void(parker::UniqueFd listener)>;

  Parking(Server& server, ParkingOptions options);
  ~Parking();
  Parking(const Parking&) = delete;
  Parking& operator=(const Parking&) = delete;

  // Connects to parker, asks what the pool holds (a listener left by a previous process, the
  // connections parked) and reports the listener (or none: parker unreachable, nothing parked,
  // no answer in startup_timeout_ms) through on_listener, exactly once. Parking works from
  // then on whenever parker is reachable.
  void start(ListenerReady on_listener);

  // Graceful restart; on_done runs once everything is parked and confirmed and the session
  // left (or after handover_timeout_ms and a grace), and the caller then shuts the server
  // down. False (nothing started) without parker.
  [[nodiscard]] bool begin_handover(std::function<void()> on_done);

  // Closes the client and the timers. Idempotent; run the loop afterwards.
  void close() noexcept;

  [[nodiscard]] std::size_t parked_count() const noexcept { return parked_.size(); }

 private:
  enum class Phase { starting, serving, handing_over, leaving, done };

  static void on_scan(uv_timer_t* timer) noexcept;
  static void on_phase_timer(uv_timer_t* timer) noexcept;
  static void on_handle_closed(uv_handle_t* handle) noexcept;

  // parker::Client callbacks
  void connected(std::size_t shard, const parker::protocol::Welcome& welcome);
  void disconnected(std::size_t shard, parker::Error error, std::chrono::milliseconds retry_in);
  void woken(std::size_t shard, parker::WokenConnection woken);
  void closed_by_parker(std::uint64_t id, parker::protocol::CloseReason reason);
  void rejected(parker::RejectedPark park);
  void error_from_parker(const parker::protocol::ErrorMessage& error);
  void inventory(std::size_t shard, const parker::protocol::InventoryReply& reply);
  void left(parker::Error error);
  void write_result(const parker::ShardedWriteResult& result);
  void write_settled(std::uint64_t id);

  // Write-through (WriteThrough): messages batched per payload until the loop iteration ends.
  bool write_through(std::uint64_t id, std::string_view pattern, std::string_view channel,
                     std::string_view message) override;
  static void on_flush_check(uv_check_t* check) noexcept;
  void flush_writes();
  // Wakes and refused parks come back here: restored at once, or kept waiting while writes
  // to the connection are in flight.
  void come_back(parker::UniqueFd fd, std::string blob, std::uint64_t id, std::string unsent, bool count_wake);
  void finish_waiting(std::uint64_t id);
  ParkedSubscriber* stand_in_of(std::uint64_t id);
  Connection* restore(parker::UniqueFd fd, std::span<const std::byte> blob, std::uint64_t id,
                      std::string_view unsent, std::unique_ptr<ParkedSubscriber> stand_in);

  void scan();
  void park_one(Connection& conn, bool handover);
  [[nodiscard]] parker::ParkOptions park_options(const Connection& conn, std::size_t shard) const;
  void woken_in_handover(std::size_t shard, parker::WokenConnection woken);
  void index_record(std::size_t shard, const parker::protocol::InventoryRecord& record);
  void inventory_done(std::size_t shard);
  void maybe_start_serving();
  [[nodiscard]] bool exactly_once(std::size_t shard) const noexcept;
  [[nodiscard]] std::size_t max_blob(std::size_t shard) const noexcept;
  Connection* restore(parker::UniqueFd fd, std::span<const std::byte> blob, std::uint64_t id);
  void forget_entry(std::uint64_t id);
  void forget_all_entries();
  void wait_at_start();
  void recall_listener();
  void decide_listener(parker::UniqueFd fd);
  void listener_woken(std::size_t shard, parker::UniqueFd fd, std::string_view blob);
  void park_listener();
  void maybe_finish_handover();
  void leave_session();
  void finish_handover();
  void update_gauge() noexcept;
  void set_scan_interval(std::uint64_t ms) noexcept;

  Server& server_;
  ParkingOptions options_;
  std::unique_ptr<parker::UvShardedClient> client_;
  uv_timer_t scan_timer_{};
  uv_timer_t phase_timer_{};  // startup wait, then the handover deadline
  int open_handles_ = 0;
  bool closed_ = false;
  Phase phase_ = Phase::starting;

  // Per shard (index as in options_.socket_paths).
  struct ShardState {
    bool warned_unavailable = false;
    bool answered = false;           // at start: its inventory is complete, or it was not reachable
    bool inventory_pending = false;  // asked at the start of its current session
    std::unordered_set<std::uint64_t> unlisted;  // indexed on it before its inventory, not in it (yet)
  };
  std::vector<ShardState> shards_;
  bool start_decided_ = false;  // every shard answered: the listener is being decided

  // The index: one entry per connection parked in our pool (stand-in only for subscribers),
  // from park() (or the inventory) until it is woken, refused, returned or closed.
  std::unordered_map<std::uint64_t, std::unique_ptr<ParkedSubscriber>> parked_;
  bool out_of_credit_counted_ = false;
  std::function<void(std::uint64_t)> recall_;  // what a ParkedSubscriber calls

  // Write-through: the batch being built (one payload, its ids), and the WRITEs in flight.
  uv_check_t flush_check_{};
  bool flush_armed_ = false;
  std::string batch_pattern_, batch_channel_, batch_message_, batch_payload_;
  std::vector<std::uint64_t> batch_ids_;
  struct WriteInFlight {
    std::uint64_t number = 0;
    std::string payload;
    std::vector<std::uint64_t> ids;
  };
  std::deque<WriteInFlight> writes_in_flight_;
  // Woken (or refused) while writes to it were in flight: served once they are answered.
  struct Waiting {
    parker::UniqueFd fd;
    std::string blob;
    std::string unsent;
    std::unique_ptr<ParkedSubscriber> stand_in;
    bool count_wake = false;
  };
  std::unordered_map<std::uint64_t, Waiting> waiting_;

  // The inventories asked for at the start of each session.
  bool listener_in_inventory_ = false;
  bool listener_held_ = false;  // ... as a wake held for the pool (it comes as a WAKE)
  bool listener_recalled_ = false;  // start: RECALLed, its WAKE (or ERROR unknown_id) is coming
  parker::UniqueFd handed_over_;  // start: the listener came back before the inventories ended
  std::size_t inventory_records_ = 0;
  std::size_t inventory_subscribers_ = 0;

  ListenerReady on_listener_;
  std::function<void()> on_handover_done_;
  parker::UniqueFd listener_;  // handover: detached from the server, not parked yet
  bool listener_parked_ = false;
  bool handover_deadline_passed_ = false;
};

}  // namespace heavy
