// (5) The alternative a user would pick instead of parking: a proxy in front. nutcracker
// (twemproxy) before a backend (redis-server now, heavy_server with --proxy-backend
// heavy_server): what an idle client costs in the proxy, and what every request pays for
// the extra hop — GET p50/p99 direct vs through the proxy, on one connection (our own
// loop, alternating direct and proxied requests) and with 50 clients (redis-benchmark,
// alternating runs).
#include <fmt/format.h>

#include <map>
#include <thread>

#include "idle_clients.hpp"
#include "latency_probe.hpp"
#include "progress.hpp"
#include "redis_benchmark.hpp"
#include "resp_client.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {
namespace {

// The proxy is the alternative to parking: heavy_server runs without it (its parker socket
// points where nothing listens).
RunningServer start_backend(const Config& config, const std::string& tag) {
  if (config.proxy_backend != "heavy_server") return start_redis(config, tag);
  return start_heavy_server(config, tag, log_dir(config) / "no-parker-here.sock");
}

// Waits until `pid` has at least `fds` open fds (the server accepted the idle clients).
void wait_for_fds(pid_t pid, std::size_t fds, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto count = open_fd_count(pid);
    if (!count) throw std::runtime_error(fmt::format("process {} is gone", pid));
    if (*count >= fds) return;
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("process {} holds {} fds, expected {}", pid, *count, fds));
    }
    std::this_thread::sleep_for(5ms);
  }
}

// RSS growth of `server` from opening `n` idle clients to `port`, in bytes per client. The
// server is fresh and has served one request first, so its one-time allocations are done.
double idle_client_bytes(const RunningServer& server, std::uint16_t port, std::size_t n, Progress& progress) {
  {
    RespClient warm(port);
    warm.command({"SET", "warm", "1"});
    warm.command({"GET", "warm"});
  }
  std::this_thread::sleep_for(100ms);
  std::size_t fds = open_fd_count(server.pid()).value_or(0);
  std::uint64_t before = rss_bytes(server.pid()).value_or(0);
  IdleClients idle;
  idle.open("127.0.0.1", port, n, 120s);
  wait_for_fds(server.pid(), fds + n, 60s);
  std::this_thread::sleep_for(200ms);  // let it finish the accepts' bookkeeping
  auto after = rss_bytes(server.pid());
  if (!after) throw std::runtime_error(server.name + " died while holding idle clients");
  idle.close_all();
  progress.advance();
  return (static_cast<double>(*after) - static_cast<double>(before)) / static_cast<double>(n);
}

void measure_memory(const Config& config, ScenarioReport& report, const std::string& backend_name) {
  const auto ns = config.pick<std::vector<std::size_t>>({100, 300}, {1000, 10000}, {1000, 10000, 19000});
  const int reps = config.reps(2, 3);
  Progress progress("proxy_nutcracker: memory per idle client", ns.size() * static_cast<std::size_t>(reps) * 2);
  RunningServer backend = start_backend(config, "proxy-memory-backend");
  PlotSpec plot{"proxy_memory.png", "memory per idle client: in the proxy vs in the backend itself",
                "idle clients (N)", "RSS growth per idle client (bytes)", true, false, "linespoints", "", {}};
  PlotSeries proxy_series{"nutcracker (proxy)", {}}, direct_series{backend_name + " (direct)", {}};
  for (std::size_t n : ns) {
    std::vector<double> proxy, direct;
    for (int rep = 0; rep < reps; ++rep) {
      // A fresh process each time: memory freed by a previous repetition would be reused.
      RunningServer nutcracker = start_nutcracker(config, backend.port, "nutcracker-memory");
      proxy.push_back(idle_client_bytes(nutcracker, nutcracker.port, n, progress));
      nutcracker.process.stop();
      RunningServer fresh = start_backend(config, "direct-memory");
      direct.push_back(idle_client_bytes(fresh, fresh.port, n, progress));
      fresh.process.stop();
    }
    std::string ns_text = std::to_string(n);
    const Summary p = report.add("idle_client_memory", {{"server", "nutcracker"}, {"clients", ns_text}}, "B", proxy);
    const Summary d = report.add("idle_client_memory", {{"server", backend_name}, {"clients", ns_text}}, "B", direct);
    proxy_series.points.emplace_back(static_cast<double>(n), p.median);
    direct_series.points.emplace_back(static_cast<double>(n), d.median);
  }
  plot.series = {proxy_series, direct_series};
  report.add_plot(std::move(plot));
}

void measure_single_connection(const Config& config, ScenarioReport& report, const RunningServer& backend,
                               const RunningServer& proxy) {
  const std::size_t samples = config.pick<std::size_t>(500, 10000, 20000);
  const int reps = config.reps(2, 3);
  RespClient direct(backend.port), via(proxy.port);
  const std::vector<std::string> get{"GET", "key:__rand_int__"};
  std::map<std::string, std::vector<double>> f;
  Progress progress("proxy_nutcracker: GET on one connection", samples * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> d, p;
    for (std::size_t i = 0; i < samples; ++i) {
      d.push_back(direct.timed_command_us(get));
      p.push_back(via.timed_command_us(get));
      progress.advance();
    }
    Percentiles dp = percentiles(d), pp = percentiles(p);
    f["direct.p50"].push_back(dp.p50);
    f["direct.p99"].push_back(dp.p99);
    f["proxy.p50"].push_back(pp.p50);
    f["proxy.p99"].push_back(pp.p99);
  }
  for (const char* path : {"direct", "proxy"}) {
    for (const char* q : {"p50", "p99"}) {
      report.add(fmt::format("get_1conn_{}", q), {{"path", path}}, "us", f[fmt::format("{}.{}", path, q)]);
    }
  }
  report.add("hop_ratio_1conn_p50", {}, "x", pairwise_ratios(f["proxy.p50"], f["direct.p50"]));
  report.add("hop_ratio_1conn_p99", {}, "x", pairwise_ratios(f["proxy.p99"], f["direct.p99"]));
}

void measure_fifty_clients(const Config& config, ScenarioReport& report, const RunningServer& backend,
                           const RunningServer& proxy) {
  const long requests = config.pick<long>(2000, 100000, 300000);
  const int reps = config.reps(2, 3);
  std::map<std::string, std::vector<double>> f;
  Progress progress("proxy_nutcracker: redis-benchmark GET -c 50", static_cast<std::size_t>(reps) * 2);
  auto log = log_dir(config) / "redis-benchmark.log";
  for (int rep = 0; rep < reps; ++rep) {
    for (const auto* server : {&backend, &proxy}) {
      auto rows = run_redis_benchmark({server->port, "get", 50, requests, std::chrono::milliseconds(300000), log});
      const auto* get = find_row(rows, "GET");
      if (get == nullptr) throw std::runtime_error("redis-benchmark printed no GET row");
      std::string path = server == &backend ? "direct" : "proxy";
      f[path + ".p50"].push_back(get->p50_us);
      f[path + ".p99"].push_back(get->p99_us);
      f[path + ".rps"].push_back(get->requests_per_second);
      progress.advance();
    }
  }
  for (const char* path : {"direct", "proxy"}) {
    report.add("get_50c_p50", {{"path", path}}, "us", f[fmt::format("{}.p50", path)]);
    report.add("get_50c_p99", {{"path", path}}, "us", f[fmt::format("{}.p99", path)]);
    report.add("get_50c_throughput", {{"path", path}}, "req/s", f[fmt::format("{}.rps", path)]);
  }
  report.add("hop_ratio_50c_p50", {}, "x", pairwise_ratios(f["proxy.p50"], f["direct.p50"]));
  report.add("hop_ratio_50c_p99", {}, "x", pairwise_ratios(f["proxy.p99"], f["direct.p99"]));
}

}  // namespace

void run_proxy_nutcracker(const Config& config, ScenarioReport& report) {
  std::vector<std::string> tools{"nutcracker", "redis-benchmark"};
  if (config.proxy_backend == "redis") tools.push_back("redis-server");
  if (auto missing = missing_tools(tools); !missing.empty()) {
    report.skip(missing);
    return;
  }
  if (config.proxy_backend == "heavy_server" && !heavy_server_built(config)) {
    report.skip("heavy_server not built");
    return;
  }
  const std::string backend_name = config.proxy_backend == "heavy_server" ? "heavy_server" : "redis-server";
  report.param("backend", backend_name);
  report.param("nutcracker", "one pool, one server connection, stats port on 127.0.0.1");
  report.param("repetitions", std::to_string(config.reps(2, 3)));
  report.param("memory", "VmRSS growth of a fresh process from N idle clients (after one warm-up request)");

  measure_memory(config, report, backend_name);

  RunningServer backend = start_backend(config, "proxy-latency-backend");
  RunningServer proxy = start_nutcracker(config, backend.port, "nutcracker-latency");
  {
    RespClient setup(backend.port);
    setup.command({"SET", "key:__rand_int__", "xxx"});  // the key redis-benchmark's GET reads
  }
  measure_single_connection(config, report, backend, proxy);
  measure_fifty_clients(config, report, backend, proxy);
  report.note("nutcracker cannot parse inline PING; GET is used throughout. hop_ratio > 1 is what "
              "every request pays for the proxy; parking adds its cost only to the first request "
              "after an idle period (see wake_latency).");
}

}  // namespace parker::bench
