// Shards (issue 13): N idle clients against one heavy_server that parks with several parkers
// (--parker once per shard), more than any one process here could hold: RLIMIT_NOFILE is
// 20000 and cannot be raised, so 45,000 clients (100,000 with --big) need three parkers (six).
//
// The clients are held by helper processes (IdleClients: at most 19,000 per process, a few
// thousand per loopback source address). heavy_server must never hold more than its own fd
// limit either, so the arrivals are paced: a batch connects only while fewer than kMaxUnparked
// connections are still waiting to be parked. Measured: the time from the first connection to
// the last park, every parker's RSS and share, heavy_server's fds (the most seen while the
// clients arrived, and after), and then a PING on every connection (parker answers it by
// heavy_server's keep-alive rule without waking anyone) — every one must answer.
#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "idle_clients.hpp"
#include "progress.hpp"
#include "resp_client.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {
namespace {

constexpr std::size_t kBatch = 1000;
constexpr std::size_t kMaxUnparked = 4000;  // heavy_server's fds stay far below 20000
constexpr auto kWaitLimit = std::chrono::seconds(120);

long long info_number(const std::string& info, const std::string& field) {
  auto at = info.find("\n" + field + ":");
  if (at == std::string::npos) return -1;
  return std::stoll(info.substr(at + field.size() + 2));
}

// heavy_server's parked_connections, waited for until it reaches `want` (bounded); returns it.
// `most_fds` keeps the highest fd count of `pid` seen meanwhile.
std::size_t wait_parked(RespClient& info, pid_t pid, std::size_t want, std::size_t& most_fds) {
  const auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  for (;;) {
    most_fds = std::max(most_fds, open_fd_count(pid).value_or(0));
    const long long parked = info_number(info.command({"INFO", "parking"}), "parked_connections");
    if (parked >= static_cast<long long>(want)) return static_cast<std::size_t>(parked);
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("heavy_server parked {} of {} within {} s", parked, want, kWaitLimit.count()));
    }
    std::this_thread::sleep_for(20ms);  // a poll interval, not a condition: the loop checks
  }
}

}  // namespace

void run_shards(const Config& config, ScenarioReport& report) {
  if (!heavy_server_built(config) || !parker_built(config)) {
    report.skip("heavy_server or parker not built");
    return;
  }
  const std::size_t n = config.pick<std::size_t>(3000, 45000, 100000);
  const std::size_t shards = config.pick<std::size_t>(3, 3, 6);  // 100k / 6 = 16.7k fds per parker
  report.param("N", std::to_string(n));
  report.param("parkers", std::to_string(shards));
  report.param("heavy_server", fmt::format("--park-after 200, --parker x{}; arrivals in batches of {} while fewer "
                                           "than {} wait to be parked", shards, kBatch, kMaxUnparked));
  ScratchDir dir;
  std::vector<RunningServer> parkers;
  std::vector<std::filesystem::path> sockets;
  for (std::size_t i = 0; i < shards; ++i) {
    parkers.push_back(start_parker(config, dir, fmt::format("shards-parker{}", i)));
    sockets.push_back(parkers.back().socket);
  }
  Config server_config = config;
  server_config.heavy_server_args.insert(server_config.heavy_server_args.end(), {"--park-after", "200"});
  RunningServer server = start_heavy_server(server_config, "shards-heavy_server", sockets);
  RespClient info(server.port, 30s);

  IdleClients idle;
  std::size_t most_fds = 0;
  const auto start = std::chrono::steady_clock::now();
  {
    Progress parking(fmt::format("shards: {} clients over {} parkers", n, shards), n);
    while (idle.count() < n) {
      // Pace: the next batch waits until heavy_server has parked all but kMaxUnparked.
      const std::size_t batch = std::min(kBatch, n - idle.count());
      if (idle.count() + batch > kMaxUnparked) wait_parked(info, server.pid(), idle.count() + batch - kMaxUnparked, most_fds);
      idle.open("127.0.0.1", server.port, batch, kWaitLimit);
      parking.set(idle.count());
    }
    wait_parked(info, server.pid(), n, most_fds);
  }
  const double park_all_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string parking_info = info.command({"INFO", "parking"});
  const double fds_after = static_cast<double>(open_fd_count(server.pid()).value_or(0));

  report.add("shards_park_all_seconds", {{"N", std::to_string(n)}}, "s", {park_all_s});
  report.add("shards_heavy_server_fds_max", {{"N", std::to_string(n)}}, "fds", {static_cast<double>(most_fds)});
  report.add("shards_heavy_server_fds_after", {{"N", std::to_string(n)}}, "fds", {fds_after});
  for (std::size_t i = 0; i < shards; ++i) {
    const std::string line = parking_info.substr(parking_info.find(fmt::format("shard{}:", i)));
    const auto at = line.find("parked=");
    const double share = at == std::string::npos ? -1 : std::stod(line.substr(at + 7));
    const double rss = static_cast<double>(rss_bytes(parkers[i].pid()).value_or(0));
    report.add("shards_parker_parked", {{"shard", std::to_string(i)}}, "conns", {share});
    report.add("shards_parker_rss", {{"shard", std::to_string(i)}}, "B", {rss});
    report.add("shards_parker_fds", {{"shard", std::to_string(i)}}, "fds",
               {static_cast<double>(open_fd_count(parkers[i].pid()).value_or(0))});
  }
  if (most_fds >= 19900) throw std::runtime_error(fmt::format("heavy_server held {} fds", most_fds));

  const auto ping_start = std::chrono::steady_clock::now();
  const std::size_t answered = idle.ping_all(kWaitLimit);
  const double ping_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ping_start).count();
  report.add("shards_ping_answered", {{"N", std::to_string(n)}}, "conns", {static_cast<double>(answered)});
  report.add("shards_ping_all_seconds", {{"N", std::to_string(n)}}, "s", {ping_s});
  if (answered != n) throw std::runtime_error(fmt::format("{} of {} parked clients answered PING", answered, n));
  report.note("all parked, every one answered PING afterwards (parker's keep-alive rule: none woken). "
              "heavy_server_fds_max: the most it held while the clients arrived (paced: at most " +
              std::to_string(kMaxUnparked) + " waiting to be parked).");
  idle.close_all();
  server.process.stop(5s);
  for (RunningServer& p : parkers) p.process.stop(5s);
}

}  // namespace parker::bench
