// (4) Wake latency: the round trip of the first request on a parked connection against one
// on a live connection, p50 / p99 / p99.9, with N other connections parked — for the minimal
// parker written on the syscalls (the floor) and, once it is wired, parker itself.
//
// Live and parked probes alternate within one run (their order swapping every pair), so both
// see the same machine. Before a parked probe is sent, the harness waits until the backend
// reports every probe parked again: each measured request really is the first one on a
// parked connection (parked_probes.hpp).
//
// Two settings, because on a VM the answer depends on it: "busy" sends the probes back to
// back (processes and CPUs are awake, as in a loaded server); "idle" waits a quiet pause
// before every probe, so each request finds the processes asleep, as a parked connection's
// first request usually does. A parked wake crosses one process more than a live request,
// so it pays one wake-up from idle more.
#include <fmt/format.h>

#include <map>
#include <thread>

#include "idle_clients.hpp"
#include "latency_probe.hpp"
#include "parked_probes.hpp"
#include "parking_backend.hpp"
#include "progress.hpp"
#include "scenario.hpp"

namespace parker::bench {
namespace {

constexpr std::size_t kProbes = 8;  // of each kind, used round-robin

struct PauseSetting {
  const char* label;
  std::chrono::microseconds pause;  // before every probe
};
constexpr PauseSetting kSettings[] = {{"busy", std::chrono::microseconds(0)},
                                      {"idle", std::chrono::microseconds(100)}};

struct Plots {
  PlotSpec cdf_idle;
  PlotSpec cdf_busy;
  PlotSpec by_n;
};

// All repetitions at one N and one pause setting: figures, CDF series, p50s for by_n.
void measure_setting(const ParkingBackend& backend, Probes& probes, std::size_t n, const PauseSetting& setting,
                     std::size_t samples, int reps, ScenarioReport& report, Plots& plots,
                     std::map<std::string, PlotSeries>& by_n) {
  const std::string b = backend.name();
  std::map<std::string, std::vector<double>> figures;
  std::vector<double> all_live, all_parked;
  Progress measuring(fmt::format("wake_latency {}: N={} {}", b, n, setting.label),
                     samples * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    ProbeSamples s = measure_probes(backend, probes, n + kProbes, samples, setting.pause, &measuring);
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

  const std::string ns = std::to_string(n);
  for (const char* mode : {"live", "parked"}) {
    for (const char* q : {"p50", "p99", "p99.9"}) {
      report.add(fmt::format("rtt_{}", q),
                 {{"backend", b}, {"before", setting.label}, {"parked_others", ns}, {"probe", mode}}, "us",
                 figures[fmt::format("{}.{}", mode, q)]);
    }
  }
  Labels labels{{"backend", b}, {"before", setting.label}, {"parked_others", ns}};
  report.add("wake_added_p50", labels, "us", figures["added_p50"]);
  report.add("parked_vs_live_p50", labels, "x", figures["ratio_p50"]);

  double x = static_cast<double>(n);
  for (const char* mode : {"live", "parked"}) {
    for (const char* q : {"p50", "p99"}) {
      std::string key = fmt::format("{} {} {} {}", b, mode, q, setting.label);
      by_n[key].title = key;
      by_n[key].points.emplace_back(x, summarize(figures[fmt::format("{}.{}", mode, q)]).median);
    }
  }
  std::sort(all_live.begin(), all_live.end());
  std::sort(all_parked.begin(), all_parked.end());
  PlotSpec& cdf = std::string(setting.label) == "idle" ? plots.cdf_idle : plots.cdf_busy;
  cdf.series.push_back({fmt::format("{} live, N={}", b, n), cdf_points(all_live)});
  cdf.series.push_back({fmt::format("{} parked, N={}", b, n), cdf_points(all_parked)});
}

void run_backend(ParkingBackend& backend, const Config& config, ScenarioReport& report, Plots& plots) {
  const auto ns = config.pick<std::vector<std::size_t>>({100, 400}, {1000, 10000, 19500}, {1000, 10000, 19500});
  const std::size_t samples = config.pick<std::size_t>(300, 4000, 10000);
  const int reps = config.reps(2, 3);

  backend.start(config);
  Probes probes = open_probes(backend, kProbes);

  IdleClients idle;
  std::map<std::string, PlotSeries> by_n;
  for (std::size_t n : ns) {
    {
      Progress connecting(fmt::format("wake_latency {}: parking {} idle", backend.name(), n), n);
      connecting.set(idle.count());
      idle.open("127.0.0.1", backend.park_port(), n - idle.count(), 120s, &connecting);
      wait_parked(backend, n + kProbes, 60s);
    }
    for (const auto& setting : kSettings) {
      measure_setting(backend, probes, n, setting, samples, reps, report, plots, by_n);
    }
  }
  for (auto& [key, series] : by_n) {
    if (key.find(" p99 busy") == std::string::npos) plots.by_n.series.push_back(std::move(series));
  }
  idle.close_all();
  backend.stop();
}

// parker's parked-probe round trip over the minimal parker's, per repetition (the two
// backends run one after the other, so each ratio pairs repetitions of the same index).
void add_parker_vs_minimal(const Config& config, ScenarioReport& report) {
  const auto ns = config.pick<std::vector<std::size_t>>({100, 400}, {1000, 10000, 19500}, {1000, 10000, 19500});
  for (std::size_t n : ns) {
    for (const auto& setting : kSettings) {
      for (const char* q : {"p50", "p99"}) {
        auto labels = [&](const char* backend) {
          return Labels{{"backend", backend}, {"before", setting.label}, {"parked_others", std::to_string(n)},
                        {"probe", "parked"}};
        };
        const Figure* p = report.find(fmt::format("rtt_{}", q), labels("parker"));
        const Figure* m = report.find(fmt::format("rtt_{}", q), labels("minimal"));
        if (p == nullptr || m == nullptr) continue;
        std::vector<double> ratio = pairwise_ratios(p->samples, m->samples);
        report.add(fmt::format("parker_vs_minimal_{}", q),
                   {{"before", setting.label}, {"parked_others", std::to_string(n)}}, "x", std::move(ratio));
      }
    }
  }
}

}  // namespace

void run_wake_latency(const Config& config, ScenarioReport& report) {
  report.param("probes", fmt::format("{} live + {} parked, used round-robin, alternating", kProbes, kProbes));
  report.param("request", "1 byte, echoed; client TCP_NODELAY");
  report.param("before", "busy: probes back to back; idle: a 100 µs quiet pause before every probe");
  report.param("samples_per_repetition", std::to_string(config.pick<std::size_t>(300, 4000, 10000)));
  report.param("repetitions", std::to_string(config.reps(2, 3)));
  if (config.size == RunSize::big) {
    report.note("--big: N stays at 19.5k here: one watcher process cannot hold more fds than "
                "RLIMIT_NOFILE (20000), and neither can parker.");
  }
  Plots plots{
      {"wake_latency_cdf.png", "first-request round trip after an idle pause: live vs parked (CDF)",
       "round trip (µs)", "fraction of requests", true, false, "lines", "", {}},
      {"wake_latency_cdf_busy.png", "round trip with probes back to back: live vs parked (CDF)",
       "round trip (µs)", "fraction of requests", true, false, "lines", "", {}},
      {"wake_latency_vs_n.png", "round trip vs number of other parked connections", "parked connections (N)",
       "round trip (µs)", true, true, "linespoints", "", {}}};

  auto minimal = make_minimal_parker();
  run_backend(*minimal, config, report, plots);

  std::string why;
  if (auto parker = make_parker_backend(config, why)) {
    run_backend(*parker, config, report, plots);
    add_parker_vs_minimal(config, report);
  } else {
    report.skip_part("parker", why);
  }
  report.add_plot(std::move(plots.cdf_idle));
  report.add_plot(std::move(plots.cdf_busy));
  report.add_plot(std::move(plots.by_n));
  report.note("wake_added_p50 is what a wake costs on top of serving the request live; flat in N "
              "means it does not grow with the number of parked connections. 'idle' includes waking "
              "one more sleeping process than a live request does.");
}

}  // namespace parker::bench
