// What crash survival costs (parker --keeper): the park/wake cycle of park_wake_throughput
// through two parkers side by side, one plain and one keeping a copy of every parked
// connection in parker-keeper, alternating repetition by repetition on the same M idle
// connections. Reported: parked/s and woken/s of each, their ratios (keeper / plain), and the
// CPU per park and per wake of parker — and of the keeper, which the plain parker does not
// have — in microseconds.
#include <unistd.h>

#include <map>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "idle_clients.hpp"
#include "parker/unix_socket.hpp"
#include "loopback.hpp"
#include "progress.hpp"
#include "scenario.hpp"
#include "servers.hpp"

#if defined(BENCH_HAVE_PARKER_CLIENT)
#include "owner_cycle.hpp"
#endif

namespace parker::bench {

#if defined(BENCH_HAVE_PARKER_CLIENT)
namespace {

constexpr std::size_t kBatches[] = {1, 64, 253};
constexpr int kPlain = 0;
constexpr int kKept = 1;

int owner_main(int listener, std::size_t m, const std::string& plain_socket, const std::string& kept_socket,
               OwnerControl* control) {
  std::vector<UniqueFd> held;
  if (!accept_connections(listener, m, held, control)) return 3;
  CycleSink sinks[2];
  for (CycleSink& s : sinks) s.control = control;
  Client plain(sinks[kPlain].callbacks());
  Client kept(sinks[kKept].callbacks());
  if (plain.connect(plain_socket, "keeper-cost").failed() || kept.connect(kept_socket, "keeper-cost").failed()) {
    return 2;
  }
  for (int i = 0; i < 5000 && !(plain.connected() && kept.connected()); ++i) {
    pump(plain, 1);
    pump(kept, 1);
  }
  if (!plain.connected() || !kept.connected()) return 4;
  control->ready = 1;
  std::uint64_t seen = 0;
  for (;;) {
    if (control->request.load() == seen) {
      if (getppid() == 1) return 0;
      pump(plain, 1);
      pump(kept, 1);
      continue;
    }
    seen = control->request.load();
    const int which = control->session.load();
    park_wake_cycle(which == kKept ? kept : plain, sinks[which], held, control->batch.load(), seen * 1'000'000,
                    control);
    control->done = seen;
  }
}

double cpu_seconds_of(pid_t pid) { return cpu_mark(pid).parker; }

}  // namespace
#endif

void run_keeper_cost(const Config& config, ScenarioReport& report) {
  if (!parker_built(config) || !std::filesystem::exists(config.program("parker-keeper"))) {
    report.skip("parker or parker-keeper not built");
    return;
  }
#if !defined(BENCH_HAVE_PARKER_CLIENT)
  report.skip("parker's client library (parker::client) not built");
#else
  const std::size_t m = config.pick<std::size_t>(500, 5000, 9000);
  const int reps = config.reps(2, 5);
  report.param("connections", std::to_string(m));
  report.param("repetitions", std::to_string(reps));

  SharedOwnerControl shared_control;
  OwnerControl* shared = shared_control.get();

  ScratchDir dir;
  // The keeper started here, so its CPU time can be read; parker finds it on --keeper-socket.
  const std::string keeper_socket = (dir.path() / "keeper.sock").string();
  ChildProcess keeper = ChildProcess::spawn({config.program("parker-keeper").string(), "--socket", keeper_socket},
                                            log_dir(config) / "keeper-cost-keeper.log");
  for (int i = 0; i < 500 && !connect_unix(keeper_socket).ok(); ++i) std::this_thread::sleep_for(10ms);
  RunningServer plain = start_parker(config, dir, "keeper-cost-plain");
  RunningServer kept = start_parker(config, dir, "keeper-cost-kept", {"--keeper", "--keeper-socket", keeper_socket});
  UniqueFd listener = listen_tcp("127.0.0.1", 0);
  const std::uint16_t port = local_port(listener.get());
  const int l = listener.get();
  const std::string plain_socket = plain.socket.string(), kept_socket = kept.socket.string();
  ChildProcess owner =
      ChildProcess::fork_function([=] { return owner_main(l, m, plain_socket, kept_socket, shared); }, {l});
  listener.reset();
  IdleClients idle;
  {
    Progress connecting(fmt::format("keeper_cost: {} idle connections", m), m);
    idle.open("127.0.0.1", port, m, 120s, &connecting);
  }
  wait_until_owner_ready(shared, owner, "take its connections and open sessions with both parkers");

  std::map<std::size_t, std::vector<double>> park[2], wake[2], park_ratio, wake_ratio;
  std::map<std::size_t, std::vector<double>> park_cpu[2], wake_cpu[2], keeper_cpu;
  std::uint64_t seq = 0;
  Progress progress("keeper_cost: cycles", std::size(kBatches) * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t batch : kBatches) {
      double p[2] = {}, w[2] = {};
      for (int turn = 0; turn < 2; ++turn) {
        const int which = (turn + rep) % 2;
        const double k0 = which == kKept ? cpu_seconds_of(keeper.pid()) : 0;
        run_owner_cycle(shared, owner, ++seq, batch, which, which == kKept ? kept.pid() : plain.pid());
        if (which == kKept) keeper_cpu[batch].push_back((cpu_seconds_of(keeper.pid()) - k0) * 1e6 / (2.0 * m));
        p[which] = static_cast<double>(m) / shared->park_seconds;
        w[which] = static_cast<double>(m - 1) / shared->wake_seconds;
        park_cpu[which][batch].push_back(shared->park_cpu_parker * 1e6 / static_cast<double>(m));
        wake_cpu[which][batch].push_back(shared->wake_cpu_parker * 1e6 / static_cast<double>(m));
        park[which][batch].push_back(p[which]);
        wake[which][batch].push_back(w[which]);
      }
      park_ratio[batch].push_back(p[kKept] / p[kPlain]);
      wake_ratio[batch].push_back(w[kKept] / w[kPlain]);
      progress.advance();
    }
  }
  progress.finish();
  for (std::size_t batch : kBatches) {
    const std::string b = std::to_string(batch);
    report.add("parked_per_second", {{"batch", b}, {"parker", "plain"}}, "fd/s", park[kPlain][batch]);
    report.add("parked_per_second", {{"batch", b}, {"parker", "keeper"}}, "fd/s", park[kKept][batch]);
    report.add("woken_per_second", {{"batch", b}, {"parker", "plain"}}, "fd/s", wake[kPlain][batch]);
    report.add("woken_per_second", {{"batch", b}, {"parker", "keeper"}}, "fd/s", wake[kKept][batch]);
    report.add("park_keeper_vs_plain", {{"batch", b}}, "x", park_ratio[batch]);
    report.add("wake_keeper_vs_plain", {{"batch", b}}, "x", wake_ratio[batch]);
    report.add("parker_cpu_per_park", {{"batch", b}, {"parker", "plain"}}, "us", park_cpu[kPlain][batch]);
    report.add("parker_cpu_per_park", {{"batch", b}, {"parker", "keeper"}}, "us", park_cpu[kKept][batch]);
    report.add("parker_cpu_per_wake", {{"batch", b}, {"parker", "plain"}}, "us", wake_cpu[kPlain][batch]);
    report.add("parker_cpu_per_wake", {{"batch", b}, {"parker", "keeper"}}, "us", wake_cpu[kKept][batch]);
    report.add("keeper_cpu_per_park_and_wake", {{"batch", b}}, "us", keeper_cpu[batch]);
  }
  report.note("Both parkers run the same cycle (park M in frames of `batch`, RECALL them all, 1.1 ACKs) on the "
              "same connections, alternating who goes first. With --keeper each park is also sent to "
              "parker-keeper (one sendmsg per batch, the fds attached) before PARKED is written, and each "
              "wake and ACK becomes a small KEEP_UPDATE record. keeper_cpu_per_park_and_wake is the "
              "keeper's own CPU per connection for a whole cycle (one park plus one wake).");
  owner.stop(1s);
  idle.close_all();
  plain.process.stop(2s);
  kept.process.stop(2s);
  keeper.stop(5s);
#endif
}

}  // namespace parker::bench
