// Counters of the daemon and their Prometheus text exposition (STATS) and pool list (LIST).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "parker/protocol.hpp"

namespace parker::daemon {

// Monotonic counters; indexed by the protocol enum's code (index 0 unused).
struct Counters {
  std::uint64_t parks_total = 0;
  std::array<std::uint64_t, 7> wakes{};      // WakeReason 1..6
  std::array<std::uint64_t, 7> closed{};     // CloseReason 1..6
  std::array<std::uint64_t, 10> rejected{};  // RejectReason 1..9
  std::array<std::uint64_t, 11> errors{};    // ErrorCode 1..10 sent to peers
  std::uint64_t sessions_total = 0;
  std::uint64_t refused_peers_total = 0;
  std::uint64_t accept_emfile_total = 0;
  std::uint64_t truncated_total = 0;      // recvmsg reported MSG_CTRUNC (fds lost by the kernel)
  std::uint64_t hello_timeouts_total = 0; // peers dropped for not saying HELLO in time
  std::uint64_t paused_for_room_total = 0; // times a session's input waited for descriptor room
  std::uint64_t peers_refused_for_room_total = 0;  // new peers closed: their slot was promised
  // 1.1 write-through and keep-alive (write_through.hpp, keepalive_rules.hpp)
  std::uint64_t writes_total = 0;             // payloads written to parked connections (per id)
  std::uint64_t write_bytes_total = 0;        // bytes the sockets took
  std::uint64_t writes_not_parked_total = 0;  // ids of WRITEs that were not parked (owner delivers)
  std::uint64_t keepalive_replies_total = 0;  // requests consumed and answered by rule
  std::uint64_t keepalive_partial_total = 0;  // partial matches that waited for the rest

  // Seconds from park to retirement (wake or close), whatever ended it.
  Histogram time_parked{0.1, 1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600};
  // Seconds from the wake decision (readable, hang-up, deadline, recall) to the WAKE frame
  // written whole to an owner; 1.1 sessions only (a 1.0 frame's fds leave with its first
  // byte, and the queue does not report that moment). Held wakes count their wait.
  Histogram wake_delivery{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 10e-3, 100e-3, 1, 10};

  void count(protocol::WakeReason r) noexcept { ++wakes[static_cast<std::size_t>(r)]; }
  void count(protocol::CloseReason r) noexcept { ++closed[static_cast<std::size_t>(r)]; }
  void count(protocol::RejectReason r) noexcept { ++rejected[static_cast<std::size_t>(r)]; }
  void count(protocol::ErrorCode c) noexcept { ++errors[static_cast<std::size_t>(c)]; }
};

// Values sampled at the moment of the request.
struct Gauges {
  std::size_t parked = 0;
  std::size_t held_wakes = 0;
  std::size_t blob_bytes = 0;
  std::size_t owner_sessions = 0;
  std::size_t observer_sessions = 0;
  std::size_t pools = 0;
  std::size_t fd_budget = 0;
  std::size_t client_fds = 0;
  std::size_t credit_outstanding = 0;
  std::size_t unacked_wakes = 0;  // 1.1: woken fds sent and not yet acknowledged (still held)
  std::size_t output_queued_bytes = 0;  // queued for peers, not yet written
};

[[nodiscard]] std::string render_prometheus(const Counters& counters, const Gauges& gauges);

// Hand-over to a successor (COUNTERS, protocol 1.2): every counter and histogram series,
// named as render_prometheus names it.
[[nodiscard]] std::vector<protocol::CounterValue> export_counters(const Counters& counters);
struct ImportedCounters {
  std::size_t added = 0;    // values added to ours
  std::size_t unknown = 0;  // values of series this parker does not have (another version), ignored
};
// Adds a predecessor's values to `counters` (normally still all zero).
ImportedCounters import_counters(Counters& counters, const std::vector<protocol::CounterValue>& values);

struct PoolLine {
  std::string name;
  unsigned owner_uid = 0;
  std::size_t sessions = 0;
  std::size_t parked = 0;
  std::size_t held = 0;
  std::size_t blob_bytes = 0;
};
// One line per pool, sorted by name:
//   pool=NAME uid=UID sessions=N parked=N held=N blob_bytes=N
[[nodiscard]] std::string render_pool_list(std::vector<PoolLine> pools);

}  // namespace parker::daemon
