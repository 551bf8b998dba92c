// parked_memory: what parker itself spends on a parked connection, beyond the blob bytes it
// was given (issue 13's goal: at most 64 bytes at 19,000 parked).
//
// Per repetition and N, in fresh processes: a parker, an owner (parker::Client, 1.1) holding N
// idle loopback connections. Parker's RSS is read once the owner's session is up, again once
// all N parks are confirmed (each with a 65-byte blob, heavy_server's size for a quiet
// client, and a 10-minute deadline, so the deadline heap is counted too); then
//   parker_bytes_per_parked_conn = (RSS after - RSS before - parker_blob_bytes) / N
// where parker_blob_bytes is parker's own gauge: what remains is the records, the index,
// the deadline heap, the blobs' malloc rounding and anything else a park costs user space.
// Kernel memory (socket buffers, the epoll item) is not in RSS: idle_scale reports slab.
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "idle_clients.hpp"
#include "loopback.hpp"
#include "parker_stats.hpp"
#include "progress.hpp"
#include "scenario.hpp"
#include "servers.hpp"

#if defined(BENCH_HAVE_PARKER_CLIENT)
#include "owner_cycle.hpp"
#endif

namespace parker::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kBlobBytes = 65;

#if defined(BENCH_HAVE_PARKER_CLIENT)

// request 1: park everything, done = 1 once parker confirmed all; then hold until the
// harness goes (it kills us).
int owner_main(int listener, std::size_t n, const std::string& socket, OwnerControl* control) {
  std::vector<UniqueFd> held;
  if (!accept_connections(listener, n, held, control)) return 3;
  ClientCallbacks callbacks;
  callbacks.on_rejected = [&](RejectedPark park) noexcept { set_error(control, "rejected: " + park.describe()); };
  callbacks.on_disconnected = [&](Error e, std::chrono::milliseconds) noexcept {
    set_error(control, "the session with parker ended: " + describe(e));
  };
  Client client(std::move(callbacks));
  if (client.connect(socket, "parked-memory").failed()) return 2;
  for (int i = 0; i < 5000 && !client.connected(); ++i) pump(client, 1);
  if (!client.connected()) return 4;
  control->ready = 1;
  while (control->request.load() == 0) {
    if (getppid() == 1) return 0;
    pump(client, 1);
  }
  ParkOptions options;
  options.deadline = 10min;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  std::size_t next = 0;
  std::string blob(kBlobBytes, 'b');
  while (next < held.size() && std::chrono::steady_clock::now() < deadline) {
    std::snprintf(blob.data(), blob.size(), "%020zu", next);  // blobs differ, as sessions do
    if (client.park(held[next], next + 1, blob, options).failed()) {
      pump(client, 1);  // no credit yet
      continue;
    }
    if (++next % 253 == 0) client.flush();
  }
  if (!pump_until(client, [&] { return next == held.size() && client.unconfirmed_parks() == 0; }, deadline)) {
    set_error(control, fmt::format("{} of {} parks confirmed", next - client.unconfirmed_parks(), held.size()));
  }
  control->done = 1;
  while (getppid() != 1) pump(client, 100);
  return 0;
}

struct Sample {
  double rss_before = 0, rss_after = 0, blob_bytes = 0, parked = 0;
};

Sample measure_once(const Config& config, std::size_t n) {
  SharedOwnerControl shared_control;
  OwnerControl* control = shared_control.get();
  ScratchDir dir;
  RunningServer parker = start_parker(config, dir, "parked-memory");
  UniqueFd listener = listen_tcp("127.0.0.1", 0);
  const std::uint16_t port = local_port(listener.get());
  const int l = listener.get();
  const std::string socket = parker.socket.string();
  ChildProcess owner = ChildProcess::fork_function([=] { return owner_main(l, n, socket, control); }, {l});
  listener.reset();
  IdleClients idle;
  idle.open("127.0.0.1", port, n, 120s);
  wait_until_owner_ready(control, owner, "open its session with parker");
  Sample s;
  s.rss_before = static_cast<double>(rss_bytes(parker.pid()).value_or(0));
  control->request = 1;
  const auto until = std::chrono::steady_clock::now() + 150s;
  while (control->done.load() == 0) {
    if (std::chrono::steady_clock::now() > until || !owner.running()) {
      throw std::runtime_error(fmt::format("parking {} did not finish: {}", n, control->error));
    }
    std::this_thread::sleep_for(2ms);
  }
  if (control->error[0] != 0) throw std::runtime_error(control->error);
  s.rss_after = static_cast<double>(rss_bytes(parker.pid()).value_or(0));
  s.blob_bytes = static_cast<double>(parker_metric(parker.socket, "parker_blob_bytes"));
  s.parked = static_cast<double>(parker_metric(parker.socket, "parker_parked_connections"));
  return s;
}

#endif

}  // namespace

void run_parked_memory(const Config& config, ScenarioReport& report) {
  if (!parker_built(config)) {
    report.skip("parker not built");
    return;
  }
#if !defined(BENCH_HAVE_PARKER_CLIENT)
  report.skip("parker's client library (parker::client) not built");
#else
  const std::vector<std::size_t> sizes =
      config.pick<std::vector<std::size_t>>({500}, {1000, 10000, 19000}, {1000, 10000, 19000});
  const int reps = config.reps(1, 3);
  report.param("repetitions", std::to_string(reps));
  report.param("blob_bytes_each", std::to_string(kBlobBytes));
  report.param("deadline", "10 min (every park is in the deadline heap)");
  std::map<std::size_t, std::vector<double>> per_conn, rss, parked;
  Progress progress("parked_memory: fresh parker per size", sizes.size() * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t n : sizes) {
      Sample s = measure_once(config, n);
      per_conn[n].push_back((s.rss_after - s.rss_before - s.blob_bytes) / static_cast<double>(n));
      rss[n].push_back(s.rss_after);
      parked[n].push_back(s.parked);
      progress.advance();
    }
  }
  progress.finish();
  for (std::size_t n : sizes) {
    const std::string label = std::to_string(n);
    report.add("parker_bytes_per_parked_conn", {{"N", label}}, "B", per_conn[n]);
    report.add("parker_rss", {{"N", label}}, "B", rss[n]);
    report.add("parked", {{"N", label}}, "", parked[n]);
  }
  report.note("parker_bytes_per_parked_conn = (parker RSS with N parked - RSS before - parker_blob_bytes) / N, "
              "fresh processes each time; the goal (issue 13) is at most 64 B at N = 19000.");
#endif
}

}  // namespace parker::bench
