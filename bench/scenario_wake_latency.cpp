// (4) Wake latency: the round trip of the first request on a parked connection against one
// on a live connection, p50 / p99 / p99.9, with N other connections parked — for the minimal
// parker written on the syscalls (the floor) and, once it is wired, parker itself.
//
// Live and parked probes alternate within one run, so both see the same machine. Before a
// parked probe is sent, the harness waits until the backend reports every probe parked
// again: each measured request really is the first one on a parked connection.
#include <fmt/format.h>

#include <map>
#include <thread>

#include "idle_clients.hpp"
#include "latency_probe.hpp"
#include "loopback.hpp"
#include "parking_backend.hpp"
#include "progress.hpp"
#include "scenario.hpp"

namespace parker::bench {
namespace {

constexpr std::size_t kProbes = 8;  // of each kind, used round-robin

// Waits until `backend` holds `count` parked connections; throws after `timeout`.
void wait_parked(const ParkingBackend& backend, std::uint64_t count, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (backend.parked_count() != count) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("{}: {} connections parked, expected {}", backend.name(),
                                           backend.parked_count(), count));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

struct Samples {
  std::vector<double> live;
  std::vector<double> parked;
};

Samples measure(const ParkingBackend& backend, std::vector<UniqueFd>& live, std::vector<UniqueFd>& parked,
                std::uint64_t expected_parked, std::size_t count, Progress& progress) {
  Samples s;
  s.live.reserve(count);
  s.parked.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    s.live.push_back(round_trip_us(live[i % live.size()].get()));
    // The previous parked probe must be back with the watcher before the next one is sent.
    wait_parked(backend, expected_parked, 2s);
    s.parked.push_back(round_trip_us(parked[i % parked.size()].get()));
    // A short pause, the same for both kinds: requests come from idle, not back to back.
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    progress.advance();
  }
  wait_parked(backend, expected_parked, 2s);
  return s;
}

void run_backend(ParkingBackend& backend, const Config& config, ScenarioReport& report,
                 PlotSpec& cdf, PlotSpec& by_n) {
  const std::vector<std::size_t> ns = config.pick<std::vector<std::size_t>>({100, 400}, {1000, 10000, 19500},
                                                                            {1000, 10000, 19500});
  const std::size_t samples = config.pick<std::size_t>(300, 4000, 10000);
  const int reps = config.reps(2, 3);
  const std::string b = backend.name();

  backend.start(config);
  std::vector<UniqueFd> live, parked;
  for (std::size_t i = 0; i < kProbes; ++i) {
    live.push_back(connect_tcp("127.0.0.1", backend.live_port()));
    parked.push_back(connect_tcp("127.0.0.1", backend.park_port()));
    set_io_timeouts(live.back().get(), 2s);
    set_io_timeouts(parked.back().get(), 2s);
  }
  wait_parked(backend, kProbes, 10s);

  IdleClients idle;
  PlotSeries p50_live{b + " live p50", {}}, p50_parked{b + " parked p50", {}};
  PlotSeries p99_live{b + " live p99", {}}, p99_parked{b + " parked p99", {}};
  for (std::size_t n : ns) {
    {
      Progress connecting(fmt::format("wake_latency {}: parking {} idle", b, n), n);
      connecting.set(idle.count());
      idle.open("127.0.0.1", backend.park_port(), n - idle.count(), 120s, &connecting);
      wait_parked(backend, n + kProbes, 60s);
    }
    std::map<std::string, std::vector<double>> figures;
    std::vector<double> all_live, all_parked;
    Progress measuring(fmt::format("wake_latency {}: N={} probing", b, n), samples * static_cast<std::size_t>(reps));
    for (int rep = 0; rep < reps; ++rep) {
      Samples s = measure(backend, live, parked, n + kProbes, samples, measuring);
      Percentiles l = percentiles(s.live), p = percentiles(s.parked);
      figures["live.p50"].push_back(l.p50);
      figures["live.p99"].push_back(l.p99);
      figures["live.p99.9"].push_back(l.p999);
      figures["parked.p50"].push_back(p.p50);
      figures["parked.p99"].push_back(p.p99);
      figures["parked.p99.9"].push_back(p.p999);
      figures["added_p50"].push_back(p.p50 - l.p50);
      figures["ratio_p50"].push_back(p.p50 / l.p50);
      all_live.insert(all_live.end(), s.live.begin(), s.live.end());
      all_parked.insert(all_parked.end(), s.parked.begin(), s.parked.end());
    }
    measuring.finish();
    std::string ns_text = std::to_string(n);
    for (const char* mode : {"live", "parked"}) {
      for (const char* q : {"p50", "p99", "p99.9"}) {
        report.add(fmt::format("rtt_{}", q), {{"backend", b}, {"parked_others", ns_text}, {"probe", mode}}, "us",
                   figures[fmt::format("{}.{}", mode, q)]);
      }
    }
    report.add("wake_added_p50", {{"backend", b}, {"parked_others", ns_text}}, "us", figures["added_p50"]);
    report.add("parked_vs_live_p50", {{"backend", b}, {"parked_others", ns_text}}, "x", figures["ratio_p50"]);

    double x = static_cast<double>(n);
    p50_live.points.emplace_back(x, summarize(figures["live.p50"]).median);
    p50_parked.points.emplace_back(x, summarize(figures["parked.p50"]).median);
    p99_live.points.emplace_back(x, summarize(figures["live.p99"]).median);
    p99_parked.points.emplace_back(x, summarize(figures["parked.p99"]).median);
    std::sort(all_live.begin(), all_live.end());
    std::sort(all_parked.begin(), all_parked.end());
    cdf.series.push_back({fmt::format("{} live, N={}", b, n), cdf_points(all_live)});
    cdf.series.push_back({fmt::format("{} parked, N={}", b, n), cdf_points(all_parked)});
  }
  by_n.series.insert(by_n.series.end(), {p50_live, p50_parked, p99_live, p99_parked});
  idle.close_all();
  backend.stop();
}

}  // namespace

void run_wake_latency(const Config& config, ScenarioReport& report) {
  report.param("probes", fmt::format("{} live + {} parked, used round-robin, alternating", kProbes, kProbes));
  report.param("request", "1 byte, echoed; client TCP_NODELAY; 100 µs pause between pairs");
  report.param("samples_per_repetition", std::to_string(config.pick<std::size_t>(300, 4000, 10000)));
  report.param("repetitions", std::to_string(config.reps(2, 3)));
  if (config.size == RunSize::big) {
    report.note("--big: N stays at 19.5k here: one watcher process cannot hold more fds than "
                "RLIMIT_NOFILE (20000), and neither can parker.");
  }
  PlotSpec cdf{"wake_latency_cdf.png", "first-request round trip: live vs parked (CDF)", "round trip (µs)",
               "fraction of requests", true, false, "lines", "", {}};
  PlotSpec by_n{"wake_latency_vs_n.png", "round trip vs number of other parked connections",
                "parked connections (N)", "round trip (µs)", true, false, "linespoints", "", {}};

  auto minimal = make_minimal_parker();
  run_backend(*minimal, config, report, cdf, by_n);

  std::string why;
  if (auto parker = make_parker_backend(config, why)) {
    run_backend(*parker, config, report, cdf, by_n);
  } else {
    report.skip_part("parker", why);
  }
  report.add_plot(std::move(cdf));
  report.add_plot(std::move(by_n));
  report.note("wake_added_p50 is what a wake costs on top of serving the request live; flat in "
              "N means the cost does not grow with the number of parked connections.");
}

}  // namespace parker::bench
