// (7) The example server's own speed: redis-benchmark -t ping,set,get against heavy_server
// and against a real redis-server on the same machine, in one run (runs alternate), and
// the ratio heavy_server / redis-server per test.
#include <fmt/format.h>

#include <map>
#include <optional>

#include "progress.hpp"
#include "redis_benchmark.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {

void run_server_speed(const Config& config, ScenarioReport& report) {
  if (!heavy_server_built(config)) {
    report.skip("heavy_server not built (no " + config.program("heavy_server").string() + ")");
    return;
  }
  if (auto missing = missing_tools({"redis-server", "redis-benchmark"}); !missing.empty()) {
    report.skip(missing);
    return;
  }
  const long requests = config.pick<long>(2000, 50000, 500000);
  const int reps = config.reps(2, 3);
  const int clients = 50;
  report.param("redis_benchmark", fmt::format("-t ping,set,get -c {} -n {}", clients, requests));
  report.param("repetitions", std::to_string(reps));
  report.param("heavy_server_args", fmt::format("--port N --bind 127.0.0.1 --parker SOCKET {}",
                                                fmt::join(config.heavy_server_args, " ")));

  // "Parking on, nothing parked": heavy_server connected to a parker of its own; the
  // benchmark's clients never pause long enough to be parked.
  ScratchDir scratch;
  std::optional<RunningServer> parker;
  std::filesystem::path parker_socket = scratch.path() / "none.sock";
  if (parker_built(config)) {
    parker.emplace(start_parker(config, scratch, "speed-parker"));
    parker_socket = parker->socket;
    report.param("parking", "on (heavy_server connected to its own parker), nothing parked");
  } else {
    report.param("parking", "off: parker not built");
  }
  RunningServer redis = start_redis(config, "speed-redis");
  RunningServer heavy = start_heavy_server(config, "speed-heavy_server", parker_socket);
  const std::vector<std::string> tests = {"PING_INLINE", "PING_MBULK", "SET", "GET"};
  std::map<std::string, std::vector<double>> rps, p50;
  auto log = log_dir(config) / "redis-benchmark.log";
  Progress progress("server_speed: redis-benchmark", static_cast<std::size_t>(reps) * 2);
  for (int rep = 0; rep < reps; ++rep) {
    for (const auto* server : {&redis, &heavy}) {
      auto rows = run_redis_benchmark({server->port, "ping,set,get", clients, requests,
                                       std::chrono::milliseconds(300000), log});
      for (const auto& test : tests) {
        const auto* row = find_row(rows, test);
        if (row == nullptr) throw std::runtime_error(fmt::format("{}: no {} result", server->name, test));
        rps[server->name + "/" + test].push_back(row->requests_per_second);
        p50[server->name + "/" + test].push_back(row->p50_us);
      }
      progress.advance();
    }
  }
  progress.finish();
  for (const auto& test : tests) {
    for (const auto* server : {&redis, &heavy}) {
      report.add("throughput", {{"server", server->name}, {"test", test}}, "req/s", rps[server->name + "/" + test]);
      report.add("latency_p50", {{"server", server->name}, {"test", test}}, "us", p50[server->name + "/" + test]);
    }
    report.add("heavy_vs_redis_throughput", {{"test", test}}, "x",
               pairwise_ratios(rps["heavy_server/" + test], rps["redis-server/" + test]));
  }
  report.note("heavy_vs_redis_throughput > 1 means heavy_server answers faster than redis-server "
              "on this machine; both run single-threaded event loops.");
}

}  // namespace parker::bench
