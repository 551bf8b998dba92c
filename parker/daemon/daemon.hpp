// Daemon: the parker service on one libuv loop — the listener, the control sessions, the
// pools of parked connections, the one deadline timer, signals, and the end-of-iteration
// flush that batches wakes per session.
//
// Loop phases used (libuv runs timers, prepare, I/O poll, check, close callbacks):
//   - I/O callbacks (sessions, parked sockets, the listener) only queue work: wake records,
//     replies, credit changes. Parked sockets are not libuv handles: they sit in one
//     SocketWatcher (an epoll/kqueue set) that libuv watches with a single uv_poll.
//   - check (after I/O) and prepare (before the next poll) flush that work: each dirty
//     session encodes its pending wakes into WAKE frames of up to 253 records and writes
//     them; credit is topped up; the deadline timer is re-armed; idle pools are forgotten.
//   - close callbacks free parked sockets and sessions (memory of a uv handle is released
//     only there).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "capacity.hpp"
#include "core_context.hpp"
#include "deadline_timer.hpp"
#include "options.hpp"
#include "parked_socket.hpp"
#include "peer_listener.hpp"
#include "parker/error.hpp"
#include "parker/unique_fd.hpp"
#include "socket_watcher.hpp"
#include "stats.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

class ControlSession;
class KeeperLink;
class Pool;

// Pools and sessions see it only as a CoreRegistry, through core_ (core_context.hpp).
class Daemon final : private CoreRegistry {
 public:
  // `reopen_log` is called on SIGHUP (may be empty).
  Daemon(uv_loop_t* loop, Config config, std::size_t fd_limit, std::function<void()> reopen_log = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Accept on this already listening socket (systemd socket activation) instead of creating
  // config.socket_path. Call before start().
  void adopt_listener(UniqueFd listening) { adopted_listener_ = std::move(listening); }
  // The same for a listening socket taken over from a predecessor (take_over.hpp): its file
  // at config.socket_path is this parker's now, removed when it stops.
  void take_over_listener(UniqueFd listening) {
    adopted_listener_ = std::move(listening);
    listener_taken_over_ = true;
  }
  // --keeper: tell `keeper` of every park, wake and close (keeper_link.hpp). Call before
  // start(), and before adopt_handover() so what is adopted is kept too. `reopen` makes a
  // new link when this one is lost (null: none).
  void use_keeper(std::unique_ptr<KeeperLink> keeper, std::function<std::unique_ptr<KeeperLink>()> reopen);
  // Called once, when shutdown begins (first TERM/INT), e.g. to tell systemd STOPPING=1 and
  // close handles the daemon does not own. Call before start().
  void on_stopping(std::function<void()> callback) { on_stopping_ = std::move(callback); }
  // Listens and installs the handles. Returns the error that prevented it.
  [[nodiscard]] Error start();
  // Runs the loop until shutdown has completed; returns the process exit code.
  int run();
  // What SIGTERM/SIGINT do: hand everything back, flush, stop. A second call stops at once.
  void request_shutdown();

  // Test seam (and the listener's path): a connected peer becomes a session.
  void adopt_peer(UniqueFd fd) { new_session(std::move(fd)); }
  // The successor's side of a hand-over (take_over.hpp): what it received, parked and held
  // here. Call after start(), before run().
  void adopt_handover(std::vector<HandoverItem> items, std::vector<protocol::HandoverClosed> closed);
  // ... and the predecessor's counters (COUNTERS, protocol 1.2), which ours continue from.
  void adopt_counters(const std::vector<protocol::CounterValue>& values);
  // ... and its pools' keep-alive rule sets (HANDOVER_RULES, 1.2). Call before adopt_handover.
  void adopt_rules(const std::vector<protocol::HandoverRules>& sets);
  [[nodiscard]] KeeperLink* keeper() const noexcept { return keeper_.get(); }
  // For status lines (sd_notify STATUS=).
  [[nodiscard]] const Counters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::size_t parked_total() const noexcept { return totals_.parked; }
  [[nodiscard]] std::string stats_text() const override;
  [[nodiscard]] std::string list_text() const override;

 private:
  static void on_socket_ready(void* context, int fd, bool error) noexcept;
  static void on_signal(uv_signal_t* handle, int signum) noexcept;
  static void on_grace_timer(uv_timer_t* handle) noexcept;
  static void on_shutdown_timer(uv_timer_t* handle) noexcept;
  static void on_hello_timer(uv_timer_t* handle) noexcept;
  static void on_flush(uv_check_t* handle) noexcept;
  static void on_prepare(uv_prepare_t* handle) noexcept;
  static void on_keeper_timer(uv_timer_t* handle) noexcept;
  void start_keeper();
  void reconnect_keeper();

  // CoreRegistry
  [[nodiscard]] Pool* pool_for(const std::string& name, uid_t uid) override;
  void pool_may_be_idle(Pool& pool) override;
  void held_added() override;
  void mark_dirty(ControlSession& session) override;
  void paused_for_room(ControlSession& session) override;
  void session_became_owner() override { ++owner_sessions_; }
  void session_closing(ControlSession& session, bool was_owner) override;
  void credit_changed() override { credit_dirty_ = true; }
  [[nodiscard]] std::uint32_t credit_window() const override;
  void hand_over(ControlSession& successor, std::uint32_t room) override;    // handover.cpp
  void handover_taken(ControlSession& successor, std::uint64_t records) override;
  void handover_failed();
  // Parks or holds each item in its pool (created as needed); fds that cannot be kept are
  // closed. Returns how many were parked and how many held.
  std::pair<std::size_t, std::size_t> adopt_items(std::vector<HandoverItem>& items,
                                                  const std::vector<protocol::HandoverClosed>& closed);

  void new_session(UniqueFd fd);
  [[nodiscard]] bool peer_allowed(uid_t uid, gid_t gid) const;
  void flush();
  void distribute_credit();
  void resume_paused_sessions();
  void drop_silent_peers();
  void give_back_memory_after_churn();
  void sweep_held();
  void maybe_finish_shutdown();
  void stop_now();
  void close_handles();

  uv_loop_t* loop_;
  Config config_;
  Capacity capacity_;
  std::function<void()> reopen_log_;
  std::function<void()> on_stopping_;
  UniqueFd adopted_listener_;
  Counters counters_;

  PeerListener listener_;
  ParkedTable table_;      // every parked connection's record, by fd; outlives the pools
  SocketWatcher watcher_;  // every parked socket, in one kernel readiness set
  DeadlineTimer deadlines_{table_};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t grace_timer_{}, shutdown_timer_{}, hello_timer_{};
  uv_check_t flush_check_{};
  uv_prepare_t flush_prepare_{};
  bool handles_open_ = false;
  bool stopped_ = false;
  // Shutdown: when it began, and totals_.bytes_to_owners when the flush timer last looked.
  std::uint64_t shutdown_began_ms_ = 0;
  std::uint64_t shutdown_bytes_seen_ = 0;

  std::unordered_map<std::string, std::unique_ptr<Pool>> pools_;
  std::vector<std::string> idle_candidates_;
  std::unordered_set<ControlSession*> sessions_;  // live; closing ones have left
  std::vector<ControlSession*> dirty_;
  std::vector<ControlSession*> paused_for_room_;  // live sessions waiting for descriptor room
  std::uint64_t next_session_id_ = 1;
  std::size_t owner_sessions_ = 0;
  std::size_t peak_sessions_ = 0;  // since the last trim (give_back_memory_after_churn)
  std::uint64_t last_trim_ = 0;

  bool credit_dirty_ = false;

  // A hand-over in progress (handover.cpp): the successor's session, and every fd handed
  // over, kept until it says TAKEN.
  struct HandingOver {
    ControlSession* to = nullptr;
    std::vector<HandoverItem> items;
    std::vector<protocol::HandoverClosed> closed;
  };
  std::optional<HandingOver> handover_;
  bool listener_taken_over_ = false;
  bool handed_over_ = false;  // TAKEN: the successor has everything, the keeper included

  std::unique_ptr<KeeperLink> keeper_;
  std::function<std::unique_ptr<KeeperLink>()> reopen_keeper_;
  uv_timer_t keeper_timer_{};

  CoreTotals totals_;  // parked, held, blob bytes; `stopping` once shutdown began
  CoreContext core_{loop_, config_, capacity_, counters_, watcher_, table_, deadlines_, totals_, *this};
};

}  // namespace parker::daemon
