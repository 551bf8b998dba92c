// (3) Idle scale: N idle TCP connections held against heavy_server, with parking (a parker
// of its own, --park-after 200) and without (its --parker path leads nowhere): heavy_server
// RSS, parker RSS and kernel memory (/proc/meminfo Slab) before and after the N connections,
// per connection. A fresh heavy_server (and parker) for every N, mode and repetition, so no
// memory is carried over from an earlier measurement.
//
// The N connections are opened by IdleClients (helper processes, several loopback source
// addresses). "Parked" means heavy_server's INFO says parked_clients >= N; "held" without
// parking means connected_clients >= N.
//
// Kernel memory is machine-wide: other processes allocating at the same moment show up in
// it, so it is the noisiest figure here (the repetitions' min-max shows how noisy).
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <thread>

#include "idle_clients.hpp"
#include "progress.hpp"
#include "resp_client.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {
namespace {

// /proc/meminfo Slab, in bytes.
double slab_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "Slab:") return kb * 1024;
  }
  throw std::runtime_error("no Slab: in /proc/meminfo");
}

// The value of `field` in an INFO reply, or -1.
long long info_field(const std::string& info, const std::string& field) {
  auto at = info.find(field + ":");
  if (at == std::string::npos) return -1;
  return std::stoll(info.substr(at + field.size() + 1));
}

struct Sample {
  double server_per_conn = 0;  // heavy_server RSS delta / N
  double parker_per_conn = 0;  // parker RSS delta / N (parking only)
  double slab_per_conn = 0;
  double server_rss = 0;
  double parker_rss = 0;
};

Sample measure_once(const Config& config, std::size_t n, bool parking, const std::string& tag) {
  ScratchDir dir;
  std::optional<RunningServer> parker;
  std::filesystem::path socket = dir.path() / "nobody.sock";
  if (parking) {
    parker = start_parker(config, dir, tag + "-parker");
    socket = parker->socket;
  }
  Config server_config = config;
  server_config.heavy_server_args.push_back("--park-after");
  server_config.heavy_server_args.push_back("200");
  RunningServer server = start_heavy_server(server_config, tag, socket);
  RespClient info(server.port);
  std::this_thread::sleep_for(300ms);  // settle: the info connection may get parked too
  (void)info.command({"INFO", "clients"});
  const double server0 = static_cast<double>(rss_bytes(server.pid()).value_or(0));
  const double parker0 = parker ? static_cast<double>(rss_bytes(parker->pid()).value_or(0)) : 0;
  const double slab0 = slab_bytes();

  IdleClients idle;
  {
    Progress connecting(fmt::format("idle_scale: N={} {}", n, parking ? "parked" : "not parked"), n);
    idle.open("127.0.0.1", server.port, n, 120s, &connecting);
  }
  const std::string field = parking ? "parked_clients" : "connected_clients";
  auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    long long have = info_field(info.command({"INFO", "clients"}), field);
    if (have >= static_cast<long long>(n)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("heavy_server: {} {} of {} after 60 s", field, have, n));
    }
    std::this_thread::sleep_for(parking ? 50ms : 10ms);
  }
  std::this_thread::sleep_for(200ms);
  Sample s;
  s.server_rss = static_cast<double>(rss_bytes(server.pid()).value_or(0));
  s.parker_rss = parker ? static_cast<double>(rss_bytes(parker->pid()).value_or(0)) : 0;
  const double nd = static_cast<double>(n);
  s.server_per_conn = (s.server_rss - server0) / nd;
  s.parker_per_conn = parker ? (s.parker_rss - parker0) / nd : 0;
  s.slab_per_conn = (slab_bytes() - slab0) / nd;
  idle.close_all();
  server.process.stop(2s);
  if (parker) parker->process.stop(2s);
  return s;
}

}  // namespace

void run_idle_scale(const Config& config, ScenarioReport& report) {
  if (!heavy_server_built(config)) {
    report.skip("heavy_server not built");
    return;
  }
  if (!parker_built(config)) {
    report.skip("parker not built");
    return;
  }
  const auto ns = config.pick<std::vector<std::size_t>>({200}, {1000, 10000, 19000}, {1000, 10000, 19000});
  const int reps = config.reps(1, 1);  // 19k idle connections: heavy_server alone pages in 4.7 GB
  report.param("N", fmt::format("{}", fmt::join(ns, ", ")));
  report.param("repetitions", std::to_string(reps));
  report.param("heavy_server", "--park-after 200; without parking its --parker path has no parker behind it");
  if (config.size == RunSize::big) {
    report.skip_part("N=100000", "no process here may hold more than RLIMIT_NOFILE = 20000 fds: neither "
                                 "heavy_server without parking nor one parker can hold 100k connections");
  }
  PlotSpec plot{"idle_scale_memory.png", "memory for N idle connections: heavy_server with and without parking",
                "idle connections (N)", "resident memory (bytes)", true, true, "linespoints", "%.1s%cB", {}};
  PlotSeries without{"heavy_server RSS, no parking", {}}, with{"heavy_server RSS, parking", {}},
      parker_series{"parker RSS (parking)", {}}, total{"heavy_server + parker, parking", {}};
  for (std::size_t n : ns) {
    std::map<std::string, std::vector<double>> f;
    for (int rep = 0; rep < reps; ++rep) {
      // Alternate which mode goes first, so both see the same machine.
      for (int k = 0; k < 2; ++k) {
        bool parking = (rep + k) % 2 == 0;
        Sample s = measure_once(config, n, parking, fmt::format("idle-{}-{}-{}", n, parking ? "park" : "live", rep));
        const std::string m = parking ? "parking" : "none";
        f[m + ".server"].push_back(s.server_per_conn);
        f[m + ".slab"].push_back(s.slab_per_conn);
        f[m + ".server_rss"].push_back(s.server_rss);
        if (parking) {
          f["parker"].push_back(s.parker_per_conn);
          f["parker_rss"].push_back(s.parker_rss);
        }
      }
    }
    std::vector<double> saved;
    for (std::size_t i = 0; i < f["none.server"].size(); ++i) saved.push_back(f["none.server"][i] - f["parking.server"][i]);
    const std::string ns_text = std::to_string(n);
    report.add("heavy_server_bytes_per_conn", {{"N", ns_text}, {"parking", "off"}}, "B", f["none.server"]);
    report.add("heavy_server_bytes_per_conn", {{"N", ns_text}, {"parking", "on"}}, "B", f["parking.server"]);
    report.add("parker_bytes_per_parked_conn", {{"N", ns_text}}, "B", f["parker"]);
    report.add("heavy_server_saved_per_conn", {{"N", ns_text}}, "B", saved);
    report.add("kernel_slab_bytes_per_conn", {{"N", ns_text}, {"parking", "off"}}, "B", f["none.slab"]);
    report.add("kernel_slab_bytes_per_conn", {{"N", ns_text}, {"parking", "on"}}, "B", f["parking.slab"]);
    auto w = report.add("heavy_server_rss", {{"N", ns_text}, {"parking", "off"}}, "B", f["none.server_rss"]);
    auto p = report.add("heavy_server_rss", {{"N", ns_text}, {"parking", "on"}}, "B", f["parking.server_rss"]);
    auto k = report.add("parker_rss", {{"N", ns_text}}, "B", f["parker_rss"]);
    double x = static_cast<double>(n);
    without.points.emplace_back(x, w.median);
    with.points.emplace_back(x, p.median);
    parker_series.points.emplace_back(x, k.median);
    total.points.emplace_back(x, p.median + k.median);
  }
  plot.series = {without, with, parker_series, total};
  report.add_plot(std::move(plot));
  report.note("bytes per connection are RSS deltas over the N connections (fresh processes each time); "
              "saved = heavy_server's per-connection memory without parking minus with it. Kernel slab "
              "is machine-wide (socket buffers of both ends and the other helpers' activity count too).");
}

}  // namespace parker::bench
