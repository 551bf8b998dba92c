// (2) Park and wake throughput through parker: connections parked per second and woken
// per second end to end (owner -> parker -> owner), batched, against two floors measured in
// the same run, interleaved repetition by repetition: the fd-passing floor (a minimal
// sendmsg/recvmsg loop, fd_pass_methods.hpp) and the minimal parker's cycle (issue 13:
// recvmsg + epoll_ctl ADD to park, epoll_ctl DEL + sendmsg to wake, minimal_cycle.hpp) on the
// same connections.
//
// An owner process (parker::Client, its own poll loop) holds M idle loopback connections
// (IdleClients) and runs the park/wake cycle of owner_cycle.hpp on the harness's request:
// park all M in PARK frames of `batch` records, RECALL them all back (a barrier at the end,
// so parker's part of every wake, 1.1's ACK included, is counted).
#include <unistd.h>

#include <map>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "fd_pass_methods.hpp"
#include "idle_clients.hpp"
#include "loopback.hpp"
#include "progress.hpp"
#include "scenario.hpp"
#include "servers.hpp"

#if defined(BENCH_HAVE_PARKER_CLIENT)
#include "minimal_cycle.hpp"
#include "owner_cycle.hpp"
#endif

namespace parker::bench {

#if defined(BENCH_HAVE_PARKER_CLIENT)
namespace {

constexpr std::size_t kBatches[] = {1, 8, 64, 253};
// OwnerControl::session: which cycle the owner runs.
constexpr int kThroughParker = 0;
constexpr int kThroughMinimal = 1;

int owner_main(int listener, std::size_t m, const std::string& socket, int minimal, OwnerControl* control) {
  std::vector<UniqueFd> held;
  if (!accept_connections(listener, m, held, control)) return 3;
  CycleSink sink;
  sink.control = control;
  Client client(sink.callbacks());
  if (client.connect(socket, "throughput").failed()) return 2;
  for (int i = 0; i < 5000 && !client.connected(); ++i) pump(client, 1);
  if (!client.connected()) return 4;
  control->ready = 1;

  std::uint64_t seen = 0;
  for (;;) {
    if (control->request.load() == seen) {
      if (getppid() == 1) return 0;
      pump(client, 1);
      continue;
    }
    seen = control->request.load();
    if (control->session.load() == kThroughMinimal) {
      minimal_cycle(minimal, held, control->batch.load(), control);
    } else {
      park_wake_cycle(client, sink, held, control->batch.load(), seen * 1'000'000, control);
    }
    control->done = seen;
  }
}

}  // namespace
#endif

void run_park_wake_throughput(const Config& config, ScenarioReport& report) {
  if (!parker_built(config)) {
    report.skip("parker not built");
    return;
  }
#if !defined(BENCH_HAVE_PARKER_CLIENT)
  report.skip("parker's client library (parker::client) not built");
#else
  const std::size_t m = config.pick<std::size_t>(500, 10000, 19000);
  // Each repetition's ratio to the minimal parker moves by up to ±50 % on a shared 2-vCPU
  // machine (a cycle of 10,000 is 20-60 ms: one scheduling hiccup shows); 11 of them (about
  // 15 s) make the median steady to a few per cent.
  const int reps = config.reps(2, 11);
  report.param("connections", std::to_string(m));
  report.param("repetitions", std::to_string(reps));
  report.param("wake_trigger", "RECALL of every parked id (see the scenario's comment)");

  SharedOwnerControl shared_control;
  OwnerControl* shared = shared_control.get();

  ScratchDir dir;
  RunningServer parker = start_parker(config, dir, "throughput-parker");
  UniqueFd listener = listen_tcp("127.0.0.1", 0);
  const std::uint16_t port = local_port(listener.get());
  const int l = listener.get();
  const std::string socket = parker.socket.string();
  MinimalWatcher minimal;  // the owner runs the minimal parker's cycle through it
  const int watcher = minimal.socket();
  ChildProcess owner =
      ChildProcess::fork_function([=] { return owner_main(l, m, socket, watcher, shared); }, {l, watcher});
  listener.reset();
  IdleClients idle;
  {
    Progress connecting(fmt::format("park_wake_throughput: {} idle connections", m), m);
    idle.open("127.0.0.1", port, m, 120s, &connecting);
  }
  wait_until_owner_ready(shared, owner, "take its connections and open a session with parker");
  // A TCP socket for the floor to pass (what parker passes).
  UniqueFd floor_listener = listen_tcp("127.0.0.1", 0);
  UniqueFd floor_socket = connect_tcp("127.0.0.1", local_port(floor_listener.get()));

  std::map<std::size_t, std::vector<double>> parked, woken, floor, park_ratio, wake_ratio;
  std::map<std::size_t, std::vector<double>> minimal_parked, minimal_woken, park_vs_minimal, wake_vs_minimal;
  // CPU microseconds per connection, [batch][who]: where the time goes, steadier than the
  // wall clock on a shared machine. who: the parker (or the minimal watcher), the owner.
  std::map<std::size_t, std::map<std::string, std::vector<double>>> cpu_park, cpu_wake;
  std::uint64_t seq = 0;
  Progress progress("park_wake_throughput: cycles", std::size(kBatches) * static_cast<std::size_t>(reps));
  report.param("minimal parker", "recvmsg + epoll_ctl ADD / epoll_ctl DEL + sendmsg, on the same connections");
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t batch : kBatches) {
      double f = measure_fd_passing(FdPassMethod::floor, batch, m, floor_socket.get(), 60s);
      // parker and the minimal parker one after the other, who goes first alternating.
      double p = 0, w = 0, pm = 0, wm = 0;
      for (int turn = 0; turn < 2; ++turn) {
        const int session = (turn + rep) % 2 == 0 ? kThroughParker : kThroughMinimal;
        const bool through_parker = session == kThroughParker;
        run_owner_cycle(shared, owner, ++seq, batch, session, through_parker ? parker.process.pid() : minimal.pid());
        (through_parker ? p : pm) = static_cast<double>(m) / shared->park_seconds;
        (through_parker ? w : wm) = static_cast<double>(m - 1) / shared->wake_seconds;
        const std::string side = through_parker ? "parker" : "minimal";
        const double us_per_park = 1e6 / static_cast<double>(m), us_per_wake = 1e6 / static_cast<double>(m - 1);
        cpu_park[batch][side].push_back(shared->park_cpu_parker * us_per_park);
        cpu_park[batch]["owner_" + side].push_back(shared->park_cpu_owner * us_per_park);
        cpu_wake[batch][side].push_back(shared->wake_cpu_parker * us_per_wake);
        cpu_wake[batch]["owner_" + side].push_back(shared->wake_cpu_owner * us_per_wake);
      }
      minimal_parked[batch].push_back(pm);
      minimal_woken[batch].push_back(wm);
      park_vs_minimal[batch].push_back(p / pm);
      wake_vs_minimal[batch].push_back(w / wm);
      parked[batch].push_back(p);
      woken[batch].push_back(w);
      floor[batch].push_back(f);
      park_ratio[batch].push_back(p / f);
      wake_ratio[batch].push_back(w / f);
      progress.advance();
    }
  }
  progress.finish();
  PlotSpec plot{"park_wake_throughput.png", "park / wake throughput: parker, the minimal parker, the fd-passing floor",
                "fds per message (batch)", "connections (fds) per second", true, true, "linespoints", "%.1s%c", {}};
  PlotSeries ps{"parked/s (parker)", {}}, ws{"woken/s (parker)", {}}, fs{"floor (sendmsg/recvmsg)", {}};
  PlotSeries mps{"parked/s (minimal parker)", {}}, mws{"woken/s (minimal parker)", {}};
  for (std::size_t batch : kBatches) {
    const std::string b = std::to_string(batch);
    auto sp = report.add("parked_per_second", {{"batch", b}}, "fd/s", parked[batch]);
    auto sw = report.add("woken_per_second", {{"batch", b}}, "fd/s", woken[batch]);
    auto sf = report.add("floor_fds_per_second", {{"batch", b}}, "fd/s", floor[batch]);
    report.add("park_vs_floor", {{"batch", b}}, "x", park_ratio[batch]);
    report.add("wake_vs_floor", {{"batch", b}}, "x", wake_ratio[batch]);
    auto smp = report.add("minimal_parked_per_second", {{"batch", b}}, "fd/s", minimal_parked[batch]);
    auto smw = report.add("minimal_woken_per_second", {{"batch", b}}, "fd/s", minimal_woken[batch]);
    report.add("park_vs_minimal", {{"batch", b}}, "x", park_vs_minimal[batch]);
    report.add("wake_vs_minimal", {{"batch", b}}, "x", wake_vs_minimal[batch]);
    for (const char* who : {"parker", "minimal", "owner_parker", "owner_minimal"}) {
      report.add("cpu_us_per_park", {{"batch", b}, {"process", who}}, "us", cpu_park[batch][who]);
      report.add("cpu_us_per_wake", {{"batch", b}, {"process", who}}, "us", cpu_wake[batch][who]);
    }
    double x = static_cast<double>(batch);
    ps.points.emplace_back(x, sp.median);
    ws.points.emplace_back(x, sw.median);
    fs.points.emplace_back(x, sf.median);
    mps.points.emplace_back(x, smp.median);
    mws.points.emplace_back(x, smw.median);
  }
  plot.series = {ps, ws, mps, mws, fs};
  report.add_plot(std::move(plot));
  report.note("End to end: parked/s counts from the first park() until the recalled last connection "
              "is back (so every PARK frame was processed, plus one round trip); woken/s from queueing "
              "the RECALLs of the others until the last WAKE is read by the owner and a barrier (a RECALL "
              "of an id never parked) is answered, so parker has also let go of its copies (1.1: on the "
              "owner's ACK). The client library negotiates its highest owner minor (1.4); ack_cost compares 1.1 with 1.0. The floor "
              "only moves fds between two processes; parker also keeps an index, an epoll registration "
              "and a wake record per connection. The minimal parker (issue 13's floor) does what a parker "
              "cannot avoid: park = recvmsg + epoll_ctl ADD, wake = epoll_ctl DEL + sendmsg, with no index, "
              "records, credit or confirmations; park_vs_minimal / wake_vs_minimal divide by it per repetition. "
              "cpu_us_per_park / cpu_us_per_wake: CPU time per connection of each process in each phase "
              "(process=parker or minimal: the watcher; owner_parker / owner_minimal: the owner process "
              "running that cycle), from /proc/PID/task/*/schedstat and CLOCK_PROCESS_CPUTIME_ID.");
  owner.stop(1s);
  idle.close_all();
  parker.process.stop(2s);
#endif
}

}  // namespace parker::bench
