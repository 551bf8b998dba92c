// (2) Park and wake throughput through parker: connections parked per second and woken
// per second end to end (owner -> parker -> owner), batched, against the fd-passing floor
// (a minimal sendmsg/recvmsg loop, fd_pass_methods.hpp) measured in the same run, the two
// interleaved repetition by repetition.
//
// An owner process (parker::Client, its own poll loop) holds M idle loopback connections
// (IdleClients). One cycle: park all M in PARK frames of `batch` records (as credit allows),
// then RECALL the last one: parker handles a session's frames in order, so its wake means
// every park has been processed. Then RECALL the other M-1 and take every fd back:
//   parked/s = M / (first park() -> the last one's wake)
//   woken/s  = (M-1) / (the RECALLs queued -> the last WAKE read)
// Recall is used as the wake trigger because it costs parker no more than a readable
// client does and needs no traffic from M client sockets (which would measure them too).
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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
#include "parker/client.hpp"
#endif

namespace parker::bench {

#if defined(BENCH_HAVE_PARKER_CLIENT)
namespace {

constexpr std::size_t kBatches[] = {1, 8, 64, 253};

// Harness <-> owner, in shared memory: the harness posts a cycle, the owner answers.
struct Shared {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<int> ready{0};
  std::atomic<std::uint64_t> request{0};  // sequence number of the requested cycle
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::size_t> batch{1};
  double park_seconds = 0;
  double wake_seconds = 0;
  char error[200] = {};
};

void fail(Shared* shared, const std::string& what) {
  std::snprintf(shared->error, sizeof shared->error, "%s", what.c_str());
}

int owner_main(int listener, std::size_t m, const std::string& socket, Shared* shared) {
  std::vector<UniqueFd> held;
  held.reserve(m);
  std::vector<UniqueFd> back;
  back.reserve(m);
  double first_wake = 0, last_wake = 0;
  ClientCallbacks callbacks;
  callbacks.on_wake = [&](WokenConnection woken) noexcept {
    double t = now_seconds();
    if (back.empty()) first_wake = t;
    last_wake = t;
    back.push_back(std::move(woken.fd));
  };
  callbacks.on_rejected = [&](RejectedPark park) noexcept {
    fail(shared, "parker rejected a park: " + park.describe());
    back.push_back(std::move(park.fd));
  };
  callbacks.on_closed = [&](std::uint64_t id, protocol::CloseReason) noexcept {
    fail(shared, fmt::format("parker closed parked connection {}", id));
  };
  Client client(std::move(callbacks));
  if (client.connect(socket, "throughput").failed()) return 2;

  // One turn of the loop: send what is queued, wait up to `timeout_ms` for parker.
  auto pump = [&](int timeout_ms) {
    client.flush();
    pollfd p{client.fd(), static_cast<short>(POLLIN | (client.wants_write() ? POLLOUT : 0)), 0};
    if (p.fd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    } else if (::poll(&p, 1, timeout_ms) > 0) {
      if (p.revents & POLLOUT) client.on_writable();
      if (p.revents & (POLLIN | POLLERR | POLLHUP)) client.on_readable();
    }
    if (auto due = client.timer_deadline(); due && std::chrono::steady_clock::now() >= *due) client.on_timer();
  };

  // Accept the M idle connections.
  while (held.size() < m) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 60000) <= 0) return 3;
    for (int c; (c = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) held.emplace_back(c);
    shared->accepted = held.size();
  }
  for (int i = 0; i < 5000 && !client.connected(); ++i) pump(1);
  if (!client.connected()) return 4;
  shared->ready = 1;

  std::uint64_t seen = 0;
  for (;;) {
    if (shared->request.load() == seen) {
      if (getppid() == 1) return 0;
      pump(1);
      continue;
    }
    seen = shared->request.load();
    const std::size_t batch = shared->batch.load();
    back.clear();
    const double t0 = now_seconds();
    auto deadline = std::chrono::steady_clock::now() + 60s;
    std::size_t next = 0;
    std::uint64_t id_base = seen * 1'000'000;
    while (next < held.size()) {
      std::size_t in_frame = 0;
      while (next < held.size() && in_frame < batch) {
        if (client.park(held[next], id_base + next, {}).failed()) break;  // no credit: wait
        ++next;
        ++in_frame;
      }
      client.flush();
      if (in_frame < batch && next < held.size()) pump(1);
      if (std::chrono::steady_clock::now() > deadline) {
        fail(shared, "parking timed out");
        break;
      }
    }
    // Parker handles a session's frames in order: once the last parked id comes back from a
    // RECALL sent after every PARK, all parks have been processed.
    if (next > 0) (void)client.recall(id_base + next - 1);
    while (back.empty() && std::chrono::steady_clock::now() < deadline) pump(5);
    const double parked_at = first_wake;
    const double t1 = now_seconds();
    for (std::size_t i = 0; i + 1 < next; ++i) (void)client.recall(id_base + i);
    while (back.size() < next && std::chrono::steady_clock::now() < deadline) pump(5);
    if (back.size() < held.size()) fail(shared, fmt::format("{} of {} connections came back", back.size(), held.size()));
    shared->park_seconds = parked_at - t0;
    shared->wake_seconds = last_wake - t1;
    held.swap(back);
    shared->done = seen;
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
  const int reps = config.reps(2, 3);
  report.param("connections", std::to_string(m));
  report.param("repetitions", std::to_string(reps));
  report.param("wake_trigger", "RECALL of every parked id (see the scenario's comment)");

  void* memory = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error("mmap failed");
  Shared* shared = new (memory) Shared();
  struct Unmap {
    void* p;
    ~Unmap() { ::munmap(p, sizeof(Shared)); }
  } unmap{memory};

  ScratchDir dir;
  RunningServer parker = start_parker(config, dir, "throughput-parker");
  UniqueFd listener = listen_tcp("127.0.0.1", 0);
  const std::uint16_t port = local_port(listener.get());
  const int l = listener.get();
  const std::string socket = parker.socket.string();
  ChildProcess owner = ChildProcess::fork_function([=] { return owner_main(l, m, socket, shared); }, {l});
  listener.reset();
  IdleClients idle;
  {
    Progress connecting(fmt::format("park_wake_throughput: {} idle connections", m), m);
    idle.open("127.0.0.1", port, m, 120s, &connecting);
  }
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (shared->ready == 0) {
    if (std::chrono::steady_clock::now() > deadline || !owner.running()) {
      throw std::runtime_error("the owner did not take its connections and open a session with parker");
    }
    std::this_thread::sleep_for(2ms);
  }
  // A TCP socket for the floor to pass (what parker passes).
  UniqueFd floor_listener = listen_tcp("127.0.0.1", 0);
  UniqueFd floor_socket = connect_tcp("127.0.0.1", local_port(floor_listener.get()));

  std::map<std::size_t, std::vector<double>> parked, woken, floor, park_ratio, wake_ratio;
  std::uint64_t seq = 0;
  Progress progress("park_wake_throughput: cycles", std::size(kBatches) * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t batch : kBatches) {
      double f = measure_fd_passing(FdPassMethod::floor, batch, m, floor_socket.get(), 60s);
      shared->batch = batch;
      shared->request = ++seq;
      auto until = std::chrono::steady_clock::now() + 90s;
      while (shared->done.load() != seq) {
        if (std::chrono::steady_clock::now() > until || !owner.running()) {
          throw std::runtime_error(fmt::format("park/wake cycle with batch {} did not finish: {}", batch,
                                               shared->error));
        }
        std::this_thread::sleep_for(1ms);
      }
      if (shared->error[0] != 0) throw std::runtime_error(shared->error);
      double p = static_cast<double>(m) / shared->park_seconds;
      double w = static_cast<double>(m - 1) / shared->wake_seconds;
      parked[batch].push_back(p);
      woken[batch].push_back(w);
      floor[batch].push_back(f);
      park_ratio[batch].push_back(p / f);
      wake_ratio[batch].push_back(w / f);
      progress.advance();
    }
  }
  progress.finish();
  PlotSpec plot{"park_wake_throughput.png", "park / wake throughput through parker vs the fd-passing floor",
                "fds per message (batch)", "connections (fds) per second", true, true, "linespoints", "%.1s%c", {}};
  PlotSeries ps{"parked/s (parker)", {}}, ws{"woken/s (parker)", {}}, fs{"floor (sendmsg/recvmsg)", {}};
  for (std::size_t batch : kBatches) {
    const std::string b = std::to_string(batch);
    auto sp = report.add("parked_per_second", {{"batch", b}}, "fd/s", parked[batch]);
    auto sw = report.add("woken_per_second", {{"batch", b}}, "fd/s", woken[batch]);
    auto sf = report.add("floor_fds_per_second", {{"batch", b}}, "fd/s", floor[batch]);
    report.add("park_vs_floor", {{"batch", b}}, "x", park_ratio[batch]);
    report.add("wake_vs_floor", {{"batch", b}}, "x", wake_ratio[batch]);
    double x = static_cast<double>(batch);
    ps.points.emplace_back(x, sp.median);
    ws.points.emplace_back(x, sw.median);
    fs.points.emplace_back(x, sf.median);
  }
  plot.series = {ps, ws, fs};
  report.add_plot(std::move(plot));
  report.note("End to end: parked/s counts from the first park() until the recalled last connection "
              "is back (so every PARK frame was processed, plus one round trip); woken/s from queueing "
              "the RECALLs of the others until the last WAKE is read by the owner. The floor "
              "only moves fds between two processes; parker also keeps an index, an epoll registration "
              "and a wake record per connection.");
  owner.stop(1s);
  idle.close_all();
  parker.process.stop(2s);
#endif
}

}  // namespace parker::bench
