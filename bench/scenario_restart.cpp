// restart: a graceful restart of heavy_server (TERM, a successor on the same pool) with N
// client connections, a share of them busy (each keeps a PING in flight the whole time) and
// the rest idle (parked). Measured per N:
//   handover_ms     TERM until the old process has exited (everything handed to parker)
//   restart_ms      TERM until the successor is listening (it has parker's inventory and the
//                   listening socket)
//   longest_wait_ms the longest a busy client's PING waited for its PONG across the restart
//   dropped         connections lost: busy ones that ended or answered wrong, plus idle ones
//                   the successor does not hold (parked or served) once the restart is over
// The idle connections are held by helper processes (IdleClients), the busy ones by a thread
// of this process (BusyClients), so no process nears the fd limit.
#include <signal.h>

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "busy_clients.hpp"
#include "idle_clients.hpp"
#include "progress.hpp"
#include "resp_client.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kBusyShare = 0.1;

long long info_field(const std::string& info, const std::string& field) {
  auto at = info.find(field + ":");
  if (at == std::string::npos) return -1;
  return std::stoll(info.substr(at + field.size() + 1));
}

bool log_has(const std::filesystem::path& log, const std::string& needle) {
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find(needle) != std::string::npos;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Polls `condition` every 5 ms for up to `timeout`; false if it never held.
template <class F>
bool wait_until(F&& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// How many client connections `port`'s server holds, parked or served (the asker excluded).
long long held(std::uint16_t port) {
  RespClient info(port, 30s);
  const std::string text = info.command({"INFO"});
  return info_field(text, "parked_connections") + info_field(text, "active_connections") - 1;
}

struct Sample {
  double handover_ms = 0, restart_ms = 0, longest_wait_ms = 0, dropped = 0;
};

Sample measure_once(const Config& config, std::size_t n, const std::string& tag) {
  ScratchDir dir;
  RunningServer parker = start_parker(config, dir, tag + "-parker");
  Config server_config = config;
  for (const char* a : {"--park-after", "200", "--session-bytes", "16K"}) server_config.heavy_server_args.push_back(a);
  RunningServer old = start_heavy_server(server_config, tag + "-old", parker.socket);
  const std::size_t busy_count = static_cast<std::size_t>(static_cast<double>(n) * kBusyShare);
  const std::size_t idle_count = n - busy_count;

  IdleClients idle;
  {
    Progress connecting(fmt::format("restart: N={}", n), idle_count);
    idle.open("127.0.0.1", old.port, idle_count, 120s, &connecting);
  }
  BusyClients busy(old.port, busy_count);
  if (!wait_until([&] { return held(old.port) >= static_cast<long long>(n); }, 60s)) {
    throw std::runtime_error(fmt::format("heavy_server holds {} of {} connections after 60 s", held(old.port), n));
  }

  busy.reset_longest_wait();
  const auto term = Clock::now();
  ::kill(old.pid(), SIGTERM);
  if (!old.process.wait(60s)) throw std::runtime_error("the old heavy_server did not exit within 60 s");
  Sample s;
  s.handover_ms = ms_since(term);
  const auto log = log_dir(config) / (tag + "-new.log");
  // The same command line as the old one (start_heavy_server's), on the port it listened on:
  // the successor takes that listening socket over from parker.
  std::vector<std::string> argv{config.program("heavy_server").string(), "--port", std::to_string(old.port),
                                "--bind", "127.0.0.1", "--parker", parker.socket.string()};
  argv.insert(argv.end(), server_config.heavy_server_args.begin(), server_config.heavy_server_args.end());
  ChildProcess successor = ChildProcess::spawn(argv, log);
  if (!wait_until([&] { return log_has(log, "listening on"); }, 60s)) {
    throw std::runtime_error("the successor did not start listening within 60 s");
  }
  s.restart_ms = ms_since(term);
  // Over once every connection is held again (or 10 s have passed: what is missing is lost).
  (void)wait_until([&] { return held(old.port) >= static_cast<long long>(n); }, 10s);
  const long long kept = held(old.port);
  const BusyClients::Counts counts = busy.stop();
  s.longest_wait_ms = counts.longest_wait_ms;
  s.dropped = static_cast<double>(counts.dropped) + static_cast<double>(n - std::min<long long>(kept, n));
  idle.close_all();
  (void)successor.stop(5s);
  (void)parker.process.stop(2s);
  return s;
}

}  // namespace

void run_restart(const Config& config, ScenarioReport& report) {
  if (!heavy_server_built(config) || !parker_built(config)) {
    report.skip("heavy_server or parker not built");
    return;
  }
  const auto ns = config.pick<std::vector<std::size_t>>({200}, {1000, 10000, 19000}, {1000, 10000, 19000});
  const int reps = config.reps(1, 2);
  report.param("N", fmt::format("{}", fmt::join(ns, ", ")));
  report.param("busy share", fmt::format("{:.0f}%", kBusyShare * 100));
  report.param("repetitions", std::to_string(reps));
  report.param("heavy_server", "--park-after 200 --session-bytes 16K; successor on the same pool");
  for (std::size_t n : ns) {
    std::vector<double> handover, restart, wait, dropped;
    for (int rep = 0; rep < reps; ++rep) {
      const Sample s = measure_once(config, n, fmt::format("restart-{}-{}", n, rep));
      handover.push_back(s.handover_ms);
      restart.push_back(s.restart_ms);
      wait.push_back(s.longest_wait_ms);
      dropped.push_back(s.dropped);
    }
    const std::string ns_text = std::to_string(n);
    report.add("restart_handover_ms", {{"N", ns_text}}, "ms", handover);
    report.add("restart_ms", {{"N", ns_text}}, "ms", restart);
    report.add("restart_longest_busy_wait_ms", {{"N", ns_text}}, "ms", wait);
    report.add("restart_clients_dropped", {{"N", ns_text}}, "", dropped);
  }
  report.note("restart_ms runs from TERM to the successor listening on the handed-over socket; the "
              "successor is started as soon as the old process has exited. The longest busy wait includes "
              "that gap: a busy client's request waits in parker's copy of its socket meanwhile.");
}

}  // namespace parker::bench
