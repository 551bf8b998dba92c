// (6) Idle cost: CPU time used by the process holding N parked connections over a quiet
// interval with no traffic (from /proc/PID/stat utime+stime; resolution one clock tick,
// 10 ms). Measured for the minimal parker (the floor: an epoll_wait that never returns)
// and, once the hook in parking_backend_parker.cpp is wired, for parker itself.
#include <fmt/format.h>

#include <thread>

#include "idle_clients.hpp"
#include "parking_backend.hpp"
#include "progress.hpp"
#include "scenario.hpp"

namespace parker::bench {
namespace {

void wait_parked(const ParkingBackend& backend, std::uint64_t count) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (backend.parked_count() < count) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("{}: only {} of {} connections parked", backend.name(),
                                           backend.parked_count(), count));
    }
    std::this_thread::sleep_for(5ms);
  }
}

void measure(ParkingBackend& backend, const Config& config, ScenarioReport& report) {
  const std::size_t n = config.pick<std::size_t>(200, 19000, 19000);
  const auto quiet = config.pick<std::chrono::milliseconds>(1000ms, 10000ms, 30000ms);
  const int reps = config.reps(1, 3);
  backend.start(config);
  IdleClients idle;
  {
    Progress connecting(fmt::format("idle_cost {}: parking {} idle", backend.name(), n), n);
    idle.open("127.0.0.1", backend.park_port(), n, 120s, &connecting);
    wait_parked(backend, n);
  }
  std::this_thread::sleep_for(500ms);  // the parking burst is over before the clock starts
  std::vector<double> watcher_pct, server_pct, watcher_seconds;
  Progress progress(fmt::format("idle_cost {}: {} quiet intervals of {} s", backend.name(), reps,
                                quiet.count() / 1000.0), static_cast<std::uint64_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    auto w0 = cpu_seconds(backend.watcher_pid()), s0 = cpu_seconds(backend.server_pid());
    double t0 = now_seconds();
    std::this_thread::sleep_for(quiet);
    auto w1 = cpu_seconds(backend.watcher_pid()), s1 = cpu_seconds(backend.server_pid());
    double elapsed = now_seconds() - t0;
    if (!w0 || !w1 || !s0 || !s1) throw std::runtime_error(backend.name() + ": a process died while idle");
    watcher_seconds.push_back(*w1 - *w0);
    watcher_pct.push_back((*w1 - *w0) / elapsed * 100);
    server_pct.push_back((*s1 - *s0) / elapsed * 100);
    progress.advance();
  }
  progress.finish();
  std::string ns = std::to_string(n);
  report.add("watcher_cpu", {{"backend", backend.name()}, {"parked", ns}}, "%", watcher_pct);
  report.add("watcher_cpu_seconds", {{"backend", backend.name()}, {"parked", ns}}, "s", watcher_seconds);
  report.add("server_cpu", {{"backend", backend.name()}, {"parked", ns}}, "%", server_pct);
  if (backend.parked_count() != n) {
    report.note(fmt::format("{}: {} connections parked at the end, {} at the start", backend.name(),
                            backend.parked_count(), n));
  }
  idle.close_all();
  backend.stop();
}

}  // namespace

void run_idle_cost(const Config& config, ScenarioReport& report) {
  report.param("parked", std::to_string(config.pick<std::size_t>(200, 19000, 19000)));
  report.param("quiet_interval_s", fmt::format("{}", config.pick<double>(1, 10, 30)));
  report.param("resolution", "one clock tick (10 ms) of utime+stime from /proc/PID/stat");
  auto minimal = make_minimal_parker();
  measure(*minimal, config, report);
  std::string why;
  if (auto parker = make_parker_backend(config, why)) {
    measure(*parker, config, report);
  } else {
    report.skip_part("parker", why);
  }
}

}  // namespace parker::bench
