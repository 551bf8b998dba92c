// CoreContext: all that a Pool and a ControlSession may use of the daemon around them.
//
// Why not the Daemon itself: what a pool or a session can reach is then written in one
// place — the loop's clock, the configuration, the descriptor budget, the counters, the
// readiness set, the deadline heap, the totals across pools — plus a few calls back up
// (CoreRegistry) for what only the owner of every pool and session can do. A test builds
// a Pool or a ControlSession on these parts alone (tests/daemon_core_test.cpp), without
// the listener, the signals or the timers of a whole daemon.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "capacity.hpp"
#include "deadline_timer.hpp"
#include "options.hpp"
#include "parked_table.hpp"
#include "socket_watcher.hpp"
#include "stats.hpp"

namespace parker::daemon {

class ControlSession;
class KeeperLink;
class Pool;

// Sums over every pool, kept by the pools themselves.
struct CoreTotals {
  std::size_t parked = 0;
  std::size_t held = 0;        // wakes held for an absent owner
  std::size_t blob_bytes = 0;
  std::size_t max_parked = 0;  // quota_total: parks beyond it are refused
  bool stopping = false;       // shutdown began: no new parks, no new holds
  std::uint64_t bytes_to_owners = 0;  // written to sessions: a shutdown waits while it grows
};

// What pools and sessions report or ask of whoever owns them all (the Daemon; a fake in
// tests). None of these calls re-enters the caller: the work they cause runs at the
// daemon's next flush.
class CoreRegistry {
 public:
  // The pool named `name` for a peer of `uid`, created on first use; null if another uid owns it.
  [[nodiscard]] virtual Pool* pool_for(const std::string& name, uid_t uid) = 0;
  // Nothing may be left in it: forgotten at the next flush if so.
  virtual void pool_may_be_idle(Pool& pool) = 0;
  // A wake is held for an absent owner: the grace timer must run.
  virtual void held_added() = 0;
  // The session has output to encode and write at the next flush.
  virtual void mark_dirty(ControlSession& session) = 0;
  // Its input stopped for want of descriptor room: resume it when room returns.
  virtual void paused_for_room(ControlSession& session) = 0;
  virtual void session_became_owner() = 0;
  // It leaves every list (its memory is freed by its close callback).
  virtual void session_closing(ControlSession& session, bool was_owner) = 0;
  // Credit may be granted, topped up or reclaimed at the next flush.
  virtual void credit_changed() = 0;
  // How much credit one owner session may hold now (a fair share of the budget).
  [[nodiscard]] virtual std::uint32_t credit_window() const = 0;
  // A session of parker's own uid (or root) asks to take everything over (TAKE_OVER), with
  // room for `room` fds; then says it has received `records` of them (TAKEN).
  virtual void hand_over(ControlSession& successor, std::uint32_t room) = 0;
  virtual void handover_taken(ControlSession& successor, std::uint64_t records) = 0;
  [[nodiscard]] virtual std::string stats_text() const = 0;
  [[nodiscard]] virtual std::string list_text() const = 0;

 protected:
  ~CoreRegistry() = default;
};

struct CoreContext {
  uv_loop_t* loop;
  const Config& config;
  Capacity& capacity;
  Counters& counters;
  SocketWatcher& watcher;
  ParkedTable& table;  // every parked connection's record, by fd
  DeadlineTimer& deadlines;
  CoreTotals& totals;
  CoreRegistry& registry;
  KeeperLink* keeper = nullptr;  // --keeper: told of every park, wake and close (keeper_link.hpp)

  [[nodiscard]] std::uint64_t now() const noexcept { return uv_now(loop); }
  [[nodiscard]] bool shutting_down() const noexcept { return totals.stopping; }
  // Client fds left parker (sent or closed): their room may be granted again.
  void fds_released(std::size_t n) {
    capacity.fds_released(n);
    registry.credit_changed();
  }
};

}  // namespace parker::daemon
