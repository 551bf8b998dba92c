// ack_cost, throughput part: one owner process holds M idle connections and has one session
// of each kind (ack_cost.hpp), each with a parker of its own (so each is alone in its
// parker, as in park_wake_throughput: same credit window, nothing shared). The harness runs
// the park/wake cycle of owner_cycle.hpp through one session at a time — for each batch
// size, the three kinds back to back, their order rotating every repetition — so 1.0 and
// 1.1 move the same connections at the same moment of the machine. Besides the wall-clock
// rates it records the CPU time parker and the owner used per connection parked and woken:
// on a shared machine that is the steadier measure of what the acks add.
#include <unistd.h>

#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ack_cost.hpp"
#include "idle_clients.hpp"
#include "loopback.hpp"
#include "progress.hpp"
#include "servers.hpp"

#if defined(BENCH_HAVE_PARKER_CLIENT)
#include "owner_cycle.hpp"
#include "raw_session.hpp"
#endif

namespace parker::bench {

Labels ack_cost_labels(const AckCostOwner& owner, Labels more) {
  Labels labels{{"protocol", owner.protocol}, {"owner", owner.owner}};
  labels.insert(labels.end(), more.begin(), more.end());
  return labels;
}

#if defined(BENCH_HAVE_PARKER_CLIENT)
namespace {

constexpr std::size_t kBatches[] = {1, 64, 253};  // one record per frame, a typical batch, the most

int owner_main(int listener, std::size_t m, const std::array<std::string, kAckCostKinds>& sockets,
               OwnerControl* control) {
  std::vector<UniqueFd> held;
  if (!accept_connections(listener, m, held, control)) return 3;
  std::array<CycleSink, kAckCostKinds> sinks;
  for (auto& sink : sinks) sink.control = control;
  // In the order of kAckCostOwners.
  RawSession raw10(sinks[0].callbacks(), 0);
  RawSession raw11(sinks[1].callbacks(), 1);
  Client client10(sinks[2].callbacks());
  Client client11(sinks[3].callbacks());
  ClientOptions speak_1_0;
  speak_1_0.max_minor = 0;
  ClientOptions speak_1_1;  // what is measured is 1.1's acks (1.3 adds only a count in the last ERROR)
  speak_1_1.max_minor = 1;
  if (raw10.connect(sockets[0], "ack-cost").failed() || raw11.connect(sockets[1], "ack-cost").failed() ||
      client10.connect(sockets[2], "ack-cost", speak_1_0).failed() ||
      client11.connect(sockets[3], "ack-cost", speak_1_1).failed()) {
    return 2;
  }
  auto all_connected = [&] {
    return raw10.connected() && raw11.connected() && client10.connected() && client11.connected();
  };
  auto pump_all = [&](int timeout_ms) {
    pump(raw10, 0);
    pump(raw11, 0);
    pump(client10, 0);
    pump(client11, timeout_ms);
  };
  for (int i = 0; i < 5000 && !all_connected(); ++i) pump_all(1);
  if (!all_connected()) return 4;
  // What is compared must be what was negotiated.
  const int minors[] = {raw10.protocol_minor(), raw11.protocol_minor(), client10.protocol_minor(),
                        client11.protocol_minor()};
  if (minors[0] != 0 || minors[1] != 1 || minors[2] != 0 || minors[3] != 1) {
    set_error(control, fmt::format("negotiated minors {}, {}, {}, {}; expected 0, 1, 0, 1", minors[0], minors[1],
                                   minors[2], minors[3]));
    return 5;
  }
  control->ready = 1;

  std::uint64_t seen = 0;
  for (;;) {
    if (control->request.load() == seen) {
      if (getppid() == 1) return 0;
      pump_all(1);
      continue;
    }
    seen = control->request.load();
    const std::size_t batch = control->batch.load();
    const std::uint64_t base = seen * 1'000'000;
    switch (control->session.load()) {
      case 0: park_wake_cycle(raw10, sinks[0], held, batch, base, control); break;
      case 1: park_wake_cycle(raw11, sinks[1], held, batch, base, control); break;
      case 2: park_wake_cycle(client10, sinks[2], held, batch, base, control); break;
      default: park_wake_cycle(client11, sinks[3], held, batch, base, control); break;
    }
    control->done = seen;
  }
}

}  // namespace

void measure_ack_cost_throughput(const Config& config, ScenarioReport& report) {
  const std::size_t m = config.pick<std::size_t>(300, 10000, 19000);
  const int reps = config.reps(2, 11);  // per-repetition ratios move by ±30 %: see park_wake_throughput
  report.param("throughput_connections", std::to_string(m));
  report.param("throughput_repetitions", std::to_string(reps));

  SharedOwnerControl shared_control;
  OwnerControl* control = shared_control.get();

  ScratchDir dir;
  std::vector<RunningServer> parkers;
  std::array<std::string, kAckCostKinds> sockets;
  for (std::size_t k = 0; k < kAckCostOwners.size(); ++k) {
    const auto& o = kAckCostOwners[k];
    parkers.push_back(start_parker(config, dir, fmt::format("ack-cost-{}-{}", o.owner, o.protocol)));
    sockets[k] = parkers.back().socket.string();
  }
  // CPU time per cycle needs /proc/PID/task/*/schedstat (CONFIG_SCHED_INFO).
  const bool cpu = scheduled_cpu_seconds(parkers[0].pid()).has_value();
  if (!cpu) report.skip_part("cpu_per_conn", "/proc/PID/task/*/schedstat is not available on this kernel");
  UniqueFd listener = listen_tcp("127.0.0.1", 0);
  const std::uint16_t port = local_port(listener.get());
  const int l = listener.get();
  ChildProcess owner = ChildProcess::fork_function([=] { return owner_main(l, m, sockets, control); }, {l});
  listener.reset();
  IdleClients idle;
  {
    Progress connecting(fmt::format("ack_cost: {} idle connections", m), m);
    idle.open("127.0.0.1", port, m, 120s, &connecting);
  }
  wait_until_owner_ready(control, owner, "open its three sessions with parker");

  // [kind][batch] -> one value per repetition
  std::map<std::size_t, std::vector<double>> parked[kAckCostKinds], woken[kAckCostKinds], cpu_parker[kAckCostKinds],
      cpu_owner[kAckCostKinds], cpu_total[kAckCostKinds];
  std::uint64_t seq = 0;
  Progress progress("ack_cost: park/wake cycles", std::size(kBatches) * kAckCostKinds * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t batch : kBatches) {
      for (std::size_t i = 0; i < kAckCostKinds; ++i) {
        const std::size_t k = (i + static_cast<std::size_t>(rep)) % kAckCostKinds;  // who goes first rotates
        run_owner_cycle(control, owner, ++seq, batch, static_cast<int>(k), cpu ? parkers[k].pid() : 0);
        const double mm = static_cast<double>(m);
        parked[k][batch].push_back(mm / control->park_seconds);
        woken[k][batch].push_back((mm - 1) / control->wake_seconds);
        // µs of CPU per connection parked and woken once
        const double p = (control->park_cpu_parker + control->wake_cpu_parker) * 1e6 / mm;
        const double o = (control->park_cpu_owner + control->wake_cpu_owner) * 1e6 / mm;
        cpu_parker[k][batch].push_back(p);
        cpu_owner[k][batch].push_back(o);
        cpu_total[k][batch].push_back(p + o);
        progress.advance();
      }
    }
  }
  progress.finish();

  PlotSpec plot{"ack_cost_throughput.png", "park / wake throughput through parker: protocol 1.0 vs 1.1 (acks)",
                "records per PARK frame (batch)", "connections per second", true, true, "linespoints", "%.1s%c", {}};
  std::vector<PlotSeries> series;
  for (std::size_t k = 0; k < kAckCostKinds; ++k) {
    const auto& o = kAckCostOwners[k];
    series.push_back({fmt::format("parked/s {} {}", o.protocol, o.owner), {}});
    series.push_back({fmt::format("woken/s {} {}", o.protocol, o.owner), {}});
  }
  for (std::size_t batch : kBatches) {
    const std::string b = std::to_string(batch);
    for (std::size_t k = 0; k < kAckCostKinds; ++k) {
      auto sp = report.add("parked_per_second", ack_cost_labels(kAckCostOwners[k], {{"batch", b}}), "fd/s",
                           parked[k][batch]);
      auto sw = report.add("woken_per_second", ack_cost_labels(kAckCostOwners[k], {{"batch", b}}), "fd/s",
                           woken[k][batch]);
      series[2 * k].points.emplace_back(static_cast<double>(batch), sp.median);
      series[2 * k + 1].points.emplace_back(static_cast<double>(batch), sw.median);
    }
    for (std::size_t k = 0; k < kAckCostKinds && cpu; ++k) {
      report.add("cpu_per_conn", ack_cost_labels(kAckCostOwners[k], {{"batch", b}, {"process", "parker"}}), "us",
                 cpu_parker[k][batch]);
      report.add("cpu_per_conn", ack_cost_labels(kAckCostOwners[k], {{"batch", b}, {"process", "owner"}}), "us",
                 cpu_owner[k][batch]);
    }
    for (std::size_t k = 0; k < kAckCostKinds; ++k) {
      if (!ack_cost_is_v11(k)) continue;
      const std::size_t base = ack_cost_baseline(k);
      Labels labels{{"owner", kAckCostOwners[k].owner}, {"batch", b}};
      report.add("park_v11_vs_v10", labels, "x", pairwise_ratios(parked[k][batch], parked[base][batch]));
      report.add("wake_v11_vs_v10", labels, "x", pairwise_ratios(woken[k][batch], woken[base][batch]));
      if (cpu) {
        report.add("cpu_v11_vs_v10", labels, "x", pairwise_ratios(cpu_total[k][batch], cpu_total[base][batch]));
      }
    }
  }
  plot.series = std::move(series);
  report.add_plot(std::move(plot));
  owner.stop(1s);
  idle.close_all();
  for (auto& p : parkers) p.process.stop(2s);
}

#else

void measure_ack_cost_throughput(const Config&, ScenarioReport& report) {
  report.skip_part("throughput", "parker's client library (parker::client) not built");
}

#endif

}  // namespace parker::bench
