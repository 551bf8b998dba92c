// fanout: PUBLISH to N subscribers (issue 12) — parked on heavy_server + parker (protocol 1.1
// write-through: no wake), live on heavy_server without parking, and on redis-server. Measured
// per N and server kind:
//   fanout_delivery_p50_us / _p99_us  PUBLISH sent → each subscriber's last byte of it
//   fanout_wakes                      wakes the messages cost (parked only, INFO parking)
//   fanout_cpu_ms_per_message         CPU of heavy_server (+ parker) per PUBLISH to N
//   keepalive_pings_per_s             every subscriber PINGs once at the same time: answers/s
//   keepalive_wakes                   wakes those PINGs cost (parked: parker answers by rule)
// The subscribers are held by helper processes (at most 9,500 sockets each, below the fd
// limit); a message carries its publish time, each helper timestamps its arrival on the same
// monotonic clock.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

#include "loopback.hpp"
#include "processes.hpp"
#include "resp_client.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kPerHelper = 9500;
constexpr int kMessages = 5;
constexpr std::size_t kStampDigits = 20;
const std::string kPong = "*2\r\n$4\r\npong\r\n$0\r\n\r\n";  // PING in subscribed mode

std::uint64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// The RESP push a subscriber of "news" gets for a message stamped with its publish time.
std::string stamp_payload(std::uint64_t ns) { return fmt::format("{:0{}}", ns, kStampDigits); }
const std::size_t kPushSize = ("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$20\r\n" + stamp_payload(0) + "\r\n").size();
constexpr std::size_t kStampOffset = 4 + 4 + 9 + 4 + 6 + 5;  // where the digits start in the push

bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool read_all(int fd, void* data, std::size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Reads from every socket until each has `want` more bytes; calls on_bytes(i, bytes) as they
// come. False after 60 s.
template <class F>
bool read_everyone(int ep, std::vector<UniqueFd>& socks, std::size_t want, F&& on_bytes) {
  std::vector<std::size_t> got(socks.size(), 0);
  std::size_t done = 0;
  const auto deadline = Clock::now() + 60s;
  epoll_event events[256];
  char buf[65536];
  while (done < socks.size()) {
    if (Clock::now() > deadline) return false;
    int n = ::epoll_wait(ep, events, 256, 200);
    for (int k = 0; k < n; ++k) {
      const auto i = static_cast<std::size_t>(events[k].data.u64);
      for (;;) {
        ssize_t r = ::recv(socks[i].get(), buf, sizeof buf, MSG_DONTWAIT);
        if (r <= 0) break;
        bool was_done = got[i] >= want;
        got[i] += static_cast<std::size_t>(r);
        on_bytes(i, std::string_view(buf, static_cast<std::size_t>(r)));
        if (!was_done && got[i] >= want) ++done;
      }
    }
  }
  return true;
}

// One helper: `count` subscribers of "news". Protocol on the pipes: helper writes 'R' when
// subscribed; reads 'M' → receives kMessages pushes each, writes u64 n + n doubles
// (latencies, µs); reads 'P' → every socket PINGs, writes a double (seconds until the last
// answer); EOF on control → exits.
int hold_subscribers(std::uint16_t port, std::size_t count, int status, int control) {
  std::vector<UniqueFd> socks;
  const std::string subscribe = encode_command({"SUBSCRIBE", "news"});
  for (std::size_t i = 0; i < count; ++i) {
    int error = 0;
    UniqueFd fd = try_connect_tcp("127.0.0.1", port, {}, error);
    if (!fd || ::send(fd.get(), subscribe.data(), subscribe.size(), MSG_NOSIGNAL) < 0) return 1;
    std::string reply;
    char buf[256];
    while (reply.find(":1\r\n") == std::string::npos) {
      ssize_t r = ::recv(fd.get(), buf, sizeof buf, 0);
      if (r <= 0) return 2;
      reply.append(buf, static_cast<std::size_t>(r));
    }
    socks.push_back(std::move(fd));
  }
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  for (std::size_t i = 0; i < socks.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, socks[i].get(), &ev);
  }
  if (!write_all(status, "R", 1)) return 3;
  char command = 0;
  while (read_all(control, &command, 1)) {
    if (command == 'M') {
      std::vector<std::string> partial(socks.size());
      std::vector<double> latencies;
      latencies.reserve(socks.size() * kMessages);
      bool ok = read_everyone(ep.get(), socks, kPushSize * kMessages, [&](std::size_t i, std::string_view bytes) {
        const std::uint64_t arrived = now_ns();
        partial[i].append(bytes);
        while (partial[i].size() >= kPushSize) {
          std::uint64_t sent = std::strtoull(partial[i].substr(kStampOffset, kStampDigits).c_str(), nullptr, 10);
          latencies.push_back(static_cast<double>(arrived - sent) / 1000.0);
          partial[i].erase(0, kPushSize);
        }
      });
      if (!ok) return 4;
      std::uint64_t n = latencies.size();
      if (!write_all(status, &n, sizeof n) || !write_all(status, latencies.data(), n * sizeof(double))) return 5;
    } else if (command == 'P') {
      const std::string ping = encode_command({"PING"});
      const double start = now_seconds();
      for (auto& s : socks) (void)::send(s.get(), ping.data(), ping.size(), MSG_NOSIGNAL);
      if (!read_everyone(ep.get(), socks, kPong.size(), [](std::size_t, std::string_view) {})) return 6;
      double seconds = now_seconds() - start;
      if (!write_all(status, &seconds, sizeof seconds)) return 7;
    }
  }
  return 0;
}

struct Helper {
  ChildProcess process;
  UniqueFd status, control;
};

std::vector<Helper> start_helpers(std::uint16_t port, std::size_t n) {
  std::vector<Helper> helpers;
  for (std::size_t at = 0; at < n; at += kPerHelper) {
    const std::size_t count = std::min(kPerHelper, n - at);
    int s[2], c[2];
    if (::pipe2(s, O_CLOEXEC) != 0 || ::pipe2(c, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    UniqueFd sr(s[0]), sw(s[1]), cr(c[0]), cw(c[1]);
    int sw_fd = sw.get(), cr_fd = cr.get();
    ChildProcess child = ChildProcess::fork_function(
        [=] { return hold_subscribers(port, count, sw_fd, cr_fd); }, {sw_fd, cr_fd});
    helpers.push_back(Helper{std::move(child), std::move(sr), std::move(cw)});
  }
  for (Helper& h : helpers) {
    char ready = 0;
    if (!read_all(h.status.get(), &ready, 1) || ready != 'R') throw std::runtime_error("a subscriber helper failed");
  }
  return helpers;
}

long long info_field(std::uint16_t port, const std::string& field) {
  RespClient c(port, 30s);
  const std::string text = c.command({"INFO"});
  auto at = text.find(field + ":");
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + field.size() + 1));
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct Sample {
  double p50 = 0, p99 = 0, wakes = 0, cpu_ms = 0, pings_per_s = 0, ping_wakes = 0;
};

Sample measure(const Config& config, const std::string& kind, std::size_t n, const std::string& tag) {
  ScratchDir dir;
  std::optional<RunningServer> parker;
  RunningServer server;
  Config server_config = config;
  for (const char* a : {"--park-after", "200", "--session-bytes", "16K"}) server_config.heavy_server_args.push_back(a);
  if (kind == "redis-server") {
    server = start_redis(config, tag + "-redis");
  } else if (kind == "parked") {
    parker = start_parker(config, dir, tag + "-parker");
    server = start_heavy_server(server_config, tag + "-heavy", parker->socket);
  } else {
    server = start_heavy_server(server_config, tag + "-heavy", dir.path() / "nobody.sock");
  }
  std::vector<Helper> helpers = start_helpers(server.port, n);
  if (kind == "parked") {
    const auto deadline = Clock::now() + 120s;
    while (info_field(server.port, "parked_connections") < static_cast<long long>(n)) {
      if (Clock::now() > deadline) throw std::runtime_error("the subscribers were not all parked within 120 s");
      std::this_thread::sleep_for(50ms);
    }
  }
  auto cpu = [&] {
    double c = cpu_seconds(server.pid()).value_or(0);
    if (parker) c += cpu_seconds(parker->pid()).value_or(0);
    return c;
  };
  Sample s;
  const long long wakes0 = kind == "parked" ? info_field(server.port, "wakes_total") : 0;
  RespClient publisher(server.port, 30s);
  for (Helper& h : helpers) (void)write_all(h.control.get(), "M", 1);
  const double cpu0 = cpu();
  for (int m = 0; m < kMessages; ++m) {
    (void)publisher.command({"PUBLISH", "news", stamp_payload(now_ns())});
    std::this_thread::sleep_for(100ms);  // pacing: one fan-out at a time
  }
  std::vector<double> latencies;
  for (Helper& h : helpers) {
    std::uint64_t count = 0;
    if (!read_all(h.status.get(), &count, sizeof count)) throw std::runtime_error("a helper did not get every message");
    std::vector<double> part(count);
    if (!read_all(h.status.get(), part.data(), count * sizeof(double))) throw std::runtime_error("helper pipe");
    latencies.insert(latencies.end(), part.begin(), part.end());
  }
  s.cpu_ms = (cpu() - cpu0) * 1000.0 / kMessages;
  s.p50 = percentile(latencies, 0.50);
  s.p99 = percentile(latencies, 0.99);
  const long long wakes1 = kind == "parked" ? info_field(server.port, "wakes_total") : 0;
  s.wakes = static_cast<double>(wakes1 - wakes0);
  if (kind == "parked") {  // parked again after the publisher's own activity settles
    std::this_thread::sleep_for(400ms);
  }
  for (Helper& h : helpers) (void)write_all(h.control.get(), "P", 1);
  double slowest = 0;
  for (Helper& h : helpers) {
    double seconds = 0;
    if (!read_all(h.status.get(), &seconds, sizeof seconds)) throw std::runtime_error("a helper's PINGs failed");
    slowest = std::max(slowest, seconds);
  }
  s.pings_per_s = static_cast<double>(n) / std::max(slowest, 1e-9);
  s.ping_wakes = kind == "parked" ? static_cast<double>(info_field(server.port, "wakes_total") - wakes1) : 0;
  helpers.clear();
  return s;
}

}  // namespace

void run_fanout(const Config& config, ScenarioReport& report) {
  if (!heavy_server_built(config) || !parker_built(config)) {
    report.skip("heavy_server or parker not built");
    return;
  }
  std::vector<std::string> kinds = {"parked", "heavy_server", "redis-server"};
  if (auto missing = missing_tools({"redis-server"}); !missing.empty()) {
    report.skip_part("redis-server", missing);
    kinds.pop_back();
  }
  const auto ns = config.pick<std::vector<std::size_t>>({1000}, {1000, 10000, 19000}, {1000, 10000, 19000});
  const int reps = config.reps(1, 3);
  report.param("N", fmt::format("{}", fmt::join(ns, ", ")));
  report.param("messages", std::to_string(kMessages));
  report.param("repetitions", std::to_string(reps));
  report.param("heavy_server", "--park-after 200 --session-bytes 16K (parked: with parker; heavy_server: without)");
  for (std::size_t n : ns) {
    std::map<std::string, std::vector<double>> p50, p99;
    for (const std::string& kind : kinds) {
      std::vector<double> wakes, cpu, pings, ping_wakes;
      for (int rep = 0; rep < reps; ++rep) {
        const Sample s = measure(config, kind, n, fmt::format("fanout-{}-{}-{}", kind, n, rep));
        p50[kind].push_back(s.p50);
        p99[kind].push_back(s.p99);
        wakes.push_back(s.wakes);
        cpu.push_back(s.cpu_ms);
        pings.push_back(s.pings_per_s);
        ping_wakes.push_back(s.ping_wakes);
      }
      const Labels labels{{"N", std::to_string(n)}, {"server", kind}};
      report.add("fanout_delivery_p50_us", labels, "us", p50[kind]);
      report.add("fanout_delivery_p99_us", labels, "us", p99[kind]);
      report.add("fanout_cpu_ms_per_message", labels, "ms", cpu);
      report.add("keepalive_pings_per_s", labels, "1/s", pings);
      if (kind == "parked") {
        report.add("fanout_wakes", labels, "", wakes);
        report.add("keepalive_wakes", labels, "", ping_wakes);
      }
    }
    if (p50.contains("redis-server")) {
      report.add("fanout_p50_parked_vs_redis", {{"N", std::to_string(n)}}, "x",
                 pairwise_ratios(p50["parked"], p50["redis-server"]));
    }
    report.add("fanout_p50_parked_vs_live", {{"N", std::to_string(n)}}, "x",
               pairwise_ratios(p50["parked"], p50["heavy_server"]));
  }
  report.note("Latency runs from just before PUBLISH is sent to the last byte of the push at each "
              "subscriber; 5 messages 100 ms apart. parked: heavy_server writes through parker (WRITE), "
              "so the subscribers stay parked; keep-alive: every subscriber PINGs once at the same moment, "
              "answered by parker's rule when parked.");
}

}  // namespace parker::bench
