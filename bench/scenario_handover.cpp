// handover: parker hands everything to a successor (`parker --take-over` on the same socket,
// issue 10) while N connections are parked. The parked set is parker's bench backend
// (parking_backend_parker.cpp: a probe server parking through parker::Client, 1.1) with N-1
// idle connections (IdleClients) and one probe connection of ours; each repetition is one
// more take-over of the same set, by a successor of the previous successor. Measured per N:
//   handover_ms           starting the successor until the old parker has exited with 0 (it
//                         got TAKEN: the successor has the listener and every fd)
//   handover_served_ms    starting the successor until a byte written to the parked probe
//                         (once the old parker is gone) comes back echoed: the successor
//                         watches the fd, the owner has reconnected to it and was woken
//   handover_connect_wait_ms  the longest an observer that connected to the socket during
//                         the hand-over waited for its STATS answer, a refused attempt
//                         (its session ended by the old parker) and the retry included
//   handover_lost         N minus what the successor reports parked once it has settled
#include <sys/wait.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "idle_clients.hpp"
#include "loopback.hpp"
#include "parker_stats.hpp"
#include "parking_backend.hpp"
#include "progress.hpp"
#include "query.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// How many connections the parker at `socket` has parked, or -1 when it does not answer.
long long parked_at(const std::filesystem::path& socket) { return parker_metric(socket, "parker_parked_connections"); }

// Waits until parker holds `n` parked and the probe server nothing of its own (every park
// confirmed); returns what parker holds then, or at `timeout`.
long long wait_settled(const ParkerDaemonBackend& backend, long long n, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const long long parked = parked_at(backend.daemon_socket());
    if ((parked == n && backend.in_hand() == 0) || Clock::now() > deadline) return parked;
    std::this_thread::sleep_for(5ms);
  }
}

// An observer that asks the socket for STATS over and over from start() to stop(), as a
// peer arriving during a hand-over would: the longest it waited for an answer, counting from
// its first attempt through refused ones (sessions the old parker ended) to the answer.
class ConnectingObserver {
 public:
  explicit ConnectingObserver(std::filesystem::path socket) : socket_(std::move(socket)) {}
  ~ConnectingObserver() { stop(); }
  ConnectingObserver(const ConnectingObserver&) = delete;
  ConnectingObserver& operator=(const ConnectingObserver&) = delete;

  void start() {
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] double longest_wait_ms() const noexcept { return longest_ms_; }
  [[nodiscard]] std::size_t refused() const noexcept { return refused_; }
  [[nodiscard]] std::size_t answered() const noexcept { return answered_; }
  [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }

 private:
  void run() {
    const auto end = Clock::now() + 120s;  // bounded whatever happens to the caller
    auto first = Clock::now();
    while (!stop_ && Clock::now() < end) {
      auto answer = ctl::ask_parker(socket_.string(), ctl::Question::stats, 10s);
      const auto now = Clock::now();
      if (answer.status == ctl::Answer::Status::ok) {
        longest_ms_ = std::max(longest_ms_, ms_between(first, now));
        ++answered_;
        std::this_thread::sleep_for(2ms);
        first = Clock::now();
      } else {
        ++refused_;
        if (ms_between(first, now) > 30000) {
          gave_up_ = true;
          return;
        }
        std::this_thread::sleep_for(1ms);
      }
    }
  }

  std::filesystem::path socket_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  double longest_ms_ = 0;
  std::size_t refused_ = 0, answered_ = 0;
  bool gave_up_ = false;
};

struct Sample {
  double handover_ms = 0, served_ms = 0, connect_wait_ms = 0, lost = 0, refused = 0;
};

// One take-over of everything `backend`'s parker holds (n parked, `probe` among them).
Sample take_over_once(const Config& config, ParkerDaemonBackend& backend, int probe, std::size_t n,
                      const std::string& tag) {
  const long long expected = static_cast<long long>(n);
  if (long long parked = wait_settled(backend, expected, 60s); parked != expected || backend.in_hand() != 0) {
    throw std::runtime_error(fmt::format("before the hand-over: parker has {} of {} parked, the owner {} in hand",
                                         parked, n, backend.in_hand()));
  }
  const std::string socket = backend.daemon_socket().string();
  const auto log = log_dir(config) / (tag + ".log");
  ConnectingObserver observer(backend.daemon_socket());
  observer.start();

  const auto start = Clock::now();
  ChildProcess old = backend.replace_daemon(
      ChildProcess::spawn({config.program("parker").string(), "--socket", socket, "--take-over"}, log));
  const auto status = old.wait(60s);
  const auto old_gone = Clock::now();
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw std::runtime_error(fmt::format("the old parker did not exit with 0 within 60 s of the take-over ({}; "
                                         "successor's log {})",
                                         status ? fmt::format("wait status {}", *status) : "still running",
                                         log.string()));
  }
  const char byte = 'h';
  char echo = 0;
  if (!write_all(probe, &byte, 1, 30s) || !read_exact(probe, &echo, 1, 30s) || echo != byte) {
    throw std::runtime_error(fmt::format("no wake through the successor within 30 s (see {})", log.string()));
  }
  const auto served = Clock::now();
  observer.stop();
  if (observer.gave_up()) throw std::runtime_error("an observer connecting during the hand-over got no answer in 30 s");

  Sample s;
  s.handover_ms = ms_between(start, old_gone);
  s.served_ms = ms_between(start, served);
  s.connect_wait_ms = observer.longest_wait_ms();
  s.refused = static_cast<double>(observer.refused());
  // The probe is parked again once its echo is written: everything settles at n.
  const long long kept = wait_settled(backend, expected, 10s);
  s.lost = static_cast<double>(expected - std::clamp(kept, 0LL, expected));
  return s;
}

}  // namespace

void run_handover(const Config& config, ScenarioReport& report) {
  std::string why;
  std::unique_ptr<ParkerDaemonBackend> backend = make_parker_daemon_backend(config, why);
  if (!backend) {
    report.skip(why);
    return;
  }
  const auto ns = config.pick<std::vector<std::size_t>>({200}, {1000, 10000, 19000}, {1000, 10000, 19000});
  const int reps = config.reps(2, 3);
  report.param("N", fmt::format("{}", fmt::join(ns, ", ")));
  report.param("repetitions", fmt::format("{} take-overs in a row per N (each by the previous one's successor)", reps));
  report.param("owner", "the bench's probe server, parker::Client on protocol 1.1 (reconnect after 50 ms)");

  backend->start(config);
  UniqueFd probe = connect_tcp("127.0.0.1", backend->park_port());
  IdleClients idle;
  for (std::size_t n : ns) {
    {
      Progress connecting(fmt::format("handover: parking {}", n), n - 1);
      connecting.set(idle.count());
      idle.open("127.0.0.1", backend->park_port(), n - 1 - idle.count(), 120s, &connecting);
    }
    std::vector<double> handover, served, wait, lost, refused;
    Progress progress(fmt::format("handover: N={}", n), static_cast<std::uint64_t>(reps));
    for (int rep = 0; rep < reps; ++rep) {
      const Sample s = take_over_once(config, *backend, probe.get(), n, fmt::format("handover-{}-{}-successor", n, rep));
      handover.push_back(s.handover_ms);
      served.push_back(s.served_ms);
      wait.push_back(s.connect_wait_ms);
      lost.push_back(s.lost);
      refused.push_back(s.refused);
      progress.advance();
    }
    progress.finish();
    const Labels labels{{"N", std::to_string(n)}};
    report.add("handover_ms", labels, "ms", handover);
    report.add("handover_served_ms", labels, "ms", served);
    report.add("handover_connect_wait_ms", labels, "ms", wait);
    report.add("handover_connect_refused", labels, "count", refused);
    report.add("handover_lost", labels, "count", lost);
  }
  idle.close_all();
  backend->stop();
  report.note("handover_ms: `parker --take-over` started until the old parker exited 0. handover_served_ms: until "
              "a byte on a parked connection came back through the successor (includes the owner's reconnect, "
              "50 ms after parker ended its session). connect_wait: the longest an observer connecting meanwhile "
              "waited for STATS; connect_refused: its attempts whose session the old parker ended (retried).");
}

}  // namespace parker::bench
