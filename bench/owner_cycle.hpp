// The park/wake cycle of park_wake_throughput and ack_cost, for any owner session type
// (parker::Client, or RawSession speaking 1.0 or 1.1): an owner process holds M idle
// connections and, each time the harness asks (OwnerControl, in shared memory), parks them
// all through one session and takes them all back:
//
//   park: M park() calls in PARK frames of `batch` records (as credit allows), then RECALL
//         of the last one: parker handles a session's frames in order, so its WAKE means
//         every park was processed.                 parked/s = M / (first park() -> that WAKE)
//   wake: RECALL of the other M-1, every WAKE read, then a barrier: RECALL of an id never
//         parked, answered (ERROR unknown_id) after everything sent before it — on 1.1 the
//         ACK of the last wakes included, so parker's letting go of its copies is counted
//         as it is on 1.0, where parker closes them as it writes.
//                                                   woken/s = (M-1) / (RECALLs -> barrier)
// Asked to, it also measures the CPU time the owner and parker used in each phase: on a
// shared machine that is steadier than the wall clock, which counts waiting for a CPU too.
// Recall is the wake trigger because it costs parker no more than a readable client does
// and needs no traffic from M client sockets (which would measure them too).
#pragma once

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "parker/client.hpp"
#include "parker/unique_fd.hpp"
#include "processes.hpp"

namespace parker::bench {

// Harness <-> owner, in shared memory (placement-new it into a MAP_SHARED mapping).
struct OwnerControl {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<int> ready{0};
  std::atomic<std::uint64_t> request{0};  // sequence number of the requested cycle
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::size_t> batch{1};
  std::atomic<int> session{0};  // which of the owner's sessions runs the cycle (ack_cost)
  std::atomic<pid_t> parker_pid{0};  // that session's parker: set, the CPU time is measured too
  double park_seconds = 0;
  double wake_seconds = 0;
  // CPU time used in each phase (with parker_pid): by the owner process and by parker.
  double park_cpu_owner = 0;
  double park_cpu_parker = 0;
  double wake_cpu_owner = 0;
  double wake_cpu_parker = 0;
  char error[200] = {};
};
void set_error(OwnerControl* control, const std::string& what);

// What the session's callbacks record during a cycle.
struct CycleSink {
  std::vector<UniqueFd> back;  // connections handed back
  double first_wake = 0;  // when the first of them came back
  std::uint64_t barrier_id = 0;
  bool barrier_seen = false;
  OwnerControl* control = nullptr;  // where an unexpected event is reported
  // Callbacks that fill this sink (which must outlive the session).
  [[nodiscard]] ClientCallbacks callbacks();
};

// CPU seconds used so far by this process and by `parker` (0 when not measured).
struct CpuMark {
  double owner = 0;
  double parker = 0;
};
[[nodiscard]] CpuMark cpu_mark(pid_t parker);

// Accepts `m` connections on `listener` into `held`; false after a minute without one.
bool accept_connections(int listener, std::size_t m, std::vector<UniqueFd>& held, OwnerControl* control);

// One turn of an owner's loop: send what is queued, wait up to `timeout_ms` for parker.
template <class Session>
void pump(Session& session, int timeout_ms) {
  session.flush();
  pollfd p{session.fd(), static_cast<short>(POLLIN | (session.wants_write() ? POLLOUT : 0)), 0};
  if (p.fd < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
  } else if (::poll(&p, 1, timeout_ms) > 0) {
    if (p.revents & POLLOUT) session.on_writable();
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) session.on_readable();
  }
  if (auto due = session.timer_deadline(); due && std::chrono::steady_clock::now() >= *due) session.on_timer();
}

// Pumps until `condition` holds (true) or `deadline` passes (false).
template <class Session, class Condition>
bool pump_until(Session& session, Condition condition, std::chrono::steady_clock::time_point deadline) {
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    pump(session, 5);
  }
  return true;
}

// One cycle (see the file comment) over `held`, which holds the connections again after it.
// Times go to control->park_seconds / wake_seconds; a failure to control->error.
template <class Session>
void park_wake_cycle(Session& session, CycleSink& sink, std::vector<UniqueFd>& held, std::size_t batch,
                     std::uint64_t id_base, OwnerControl* control) {
  using namespace std::chrono_literals;
  sink.back.clear();
  sink.barrier_id = id_base + 999'999;  // ids of the cycle are id_base + i, i < M
  sink.barrier_seen = false;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  const pid_t parker = control->parker_pid.load();
  const CpuMark c0 = cpu_mark(parker);
  const double t0 = now_seconds();
  // The connections were accepted here, as a server's are: park() need not fstat them
  // (ParkOptions::socket_known, what heavy_server says too).
  ParkOptions options;
  options.socket_known = true;
  std::size_t next = 0;
  while (next < held.size()) {
    std::size_t in_frame = 0;
    while (next < held.size() && in_frame < batch) {
      if (session.park(held[next], id_base + next, {}, options).failed()) break;  // no credit: wait
      ++next;
      ++in_frame;
    }
    session.flush();
    if (in_frame < batch && next < held.size()) pump(session, 1);
    if (std::chrono::steady_clock::now() > deadline) {
      set_error(control, "parking timed out");
      break;
    }
  }
  if (next > 0) (void)session.recall(id_base + next - 1);
  pump_until(session, [&] { return !sink.back.empty(); }, deadline);
  const double parked_at = sink.first_wake;
  const CpuMark c1 = cpu_mark(parker);
  const double t1 = now_seconds();
  for (std::size_t i = 0; i + 1 < next; ++i) (void)session.recall(id_base + i);
  pump_until(session, [&] { return sink.back.size() >= next; }, deadline);
  (void)session.recall(sink.barrier_id);
  if (!pump_until(session, [&] { return sink.barrier_seen; }, deadline)) set_error(control, "no answer to the barrier");
  const double t2 = now_seconds();
  const CpuMark c2 = cpu_mark(parker);
  if (sink.back.size() < held.size()) {
    set_error(control, std::to_string(sink.back.size()) + " of " + std::to_string(held.size()) + " connections came back");
  }
  control->park_seconds = parked_at - t0;
  control->wake_seconds = t2 - t1;
  control->park_cpu_owner = c1.owner - c0.owner;
  control->park_cpu_parker = c1.parker - c0.parker;
  control->wake_cpu_owner = c2.owner - c1.owner;
  control->wake_cpu_parker = c2.parker - c1.parker;
  held.swap(sink.back);
}

// Harness side: asks for cycle `seq` (batch, session) and waits for it; throws with the
// owner's error if it fails or the owner dies.
// With `parker` (its pid) the cycle also measures CPU time.
// An OwnerControl in memory shared with the owner process the harness forks (MAP_SHARED),
// unmapped when destroyed.
class SharedOwnerControl {
 public:
  SharedOwnerControl();
  ~SharedOwnerControl();
  SharedOwnerControl(const SharedOwnerControl&) = delete;
  SharedOwnerControl& operator=(const SharedOwnerControl&) = delete;
  [[nodiscard]] OwnerControl* get() const noexcept { return control_; }

 private:
  OwnerControl* control_;
};

// Waits (30 s at most) until the owner has accepted its connections and opened its sessions
// (control->ready); throws "the owner did not <what>" with the owner's error otherwise.
void wait_until_owner_ready(OwnerControl* control, ChildProcess& owner, const std::string& what);

void run_owner_cycle(OwnerControl* control, ChildProcess& owner, std::uint64_t seq, std::size_t batch, int session,
                     pid_t parker = 0);

}  // namespace parker::bench
