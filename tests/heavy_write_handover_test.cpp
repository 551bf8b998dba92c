// Write-through exactly once while parker ends heavy_server's session itself (issue 12): 200
// real subscribers (redis-cli, parked) and a publisher publishing numbered messages all the
// while parker is replaced by `parker --take-over`, that one by SIGUSR2, and the last one
// stopped by SIGTERM (the parked subscribers handed back to heavy_server). Every subscriber
// must receive every message exactly once, in order.
//
// The gap it pins: WRITEs heavy_server had sent that parker had not read when it ended the
// session came back from the client library as `unknown`, which heavy_server counts as made —
// those messages were lost. With protocol 1.3 parker's last ERROR says how far it got, the
// later writes come back `not_sent`, and heavy_server delivers them itself.
//
// The loss needs a WRITE in flight at the very moment a session ends, so on the code before
// the fix this fails only sometimes: 1 run in 9 (600 of 1432 messages lost: 3 to each of the
// 200 subscribers); with the fix 7 runs of 7 lost nothing. Publishing harder makes in-flight
// WRITEs likelier but starves the take-over (an old parker busy writing through answers the
// successor after its 10 s limit), so the pace stays gentle.
//
// A second gap it found: the last parker, stopping, hands every subscriber back in WAKE frames
// and closes. heavy_server's next WRITE met EPIPE (or its poller the socket's error) before it
// had read those frames, and the client library closed the socket unread — with the only
// copies of all 200 subscribers in it (1 run in 4 or so under ASan). The library now reads
// what parker sent before it ends the session.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

namespace {

constexpr int kSubscribers = 200;
constexpr long kMaxMessages = 30000;  // the publisher's bound
constexpr int kBurst = 2;             // PUBLISHes pipelined before their replies are read

// Publishes "m0", "m1"... on channel `news` from its own connection, in pipelined bursts,
// until stopped (or kMaxMessages). Each PUBLISH must count every subscriber.
class Publisher {
 public:
  explicit Publisher(std::uint16_t port)
      : client_(port), thread_([this] {
          while (!stop_ && published_ < kMaxMessages) {
            const long first = published_;
            const long n = std::min<long>(kBurst, kMaxMessages - first);
            for (long i = 0; i < n; ++i) client_.send({"PUBLISH", "news", "m" + std::to_string(first + i)});
            for (long i = 0; i < n; ++i) {
              const std::string reply = client_.reply(30s);
              if (reply.empty()) {
                failed_ = true;
                return;
              }
              if (reply != ":" + std::to_string(kSubscribers) + "\r\n") ++miscounted_;
              ++published_;
            }
            std::this_thread::sleep_for(20ms);  // the pace of publishing, not a wait for anything
          }
        }) {}
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  ~Publisher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] long published() const { return published_; }
  [[nodiscard]] long miscounted() const { return miscounted_; }
  [[nodiscard]] bool failed() const { return failed_; }
  // Waits (bounded) until `more` messages beyond now have been published.
  bool advance(long more) {
    const long target = published_ + more;
    return eventually([&] { return published_ >= target || failed_; }, 60s) && !failed_;
  }

 private:
  RespClient client_;
  std::atomic<bool> stop_{false};
  std::atomic<long> published_{0};
  std::atomic<long> miscounted_{0};
  std::atomic<bool> failed_{false};
  std::thread thread_;
};

// What one subscriber received, against m0..m(total-1) then "end".
struct Received {
  long messages = 0;   // "m…" messages
  long lost = 0;       // numbers below total never received
  long duplicated = 0; // received more than once
  long disorder = 0;   // received after a higher number
  bool ended = false;
};

Received check_received(const std::string& output, long total) {
  Received r;
  std::vector<char> seen(static_cast<std::size_t>(total), 0);
  long highest = -1;
  std::istringstream in(output);
  std::string line, channel, payload;
  while (std::getline(in, line)) {
    if (line != "message" || !std::getline(in, channel) || !std::getline(in, payload)) continue;
    if (payload == "end") {
      r.ended = true;
      break;
    }
    if (payload.size() < 2 || payload[0] != 'm') continue;
    const long k = std::stol(payload.substr(1));
    ++r.messages;
    if (k < 0 || k >= total) continue;
    if (seen[static_cast<std::size_t>(k)] != 0) ++r.duplicated;
    seen[static_cast<std::size_t>(k)] = 1;
    if (k < highest) ++r.disorder;
    highest = std::max(highest, k);
  }
  for (char s : seen) r.lost += s == 0 ? 1 : 0;
  return r;
}


// Waits (bounded) until the parker on `socket` has written `more` more payloads through: heavy_server
// has a session with it again and writes through it (its counters continue across a hand-over).
bool writing_through(const std::string& socket, long long more) {
  long long start = -1;
  return eventually([&] {
    const long long now = metric(parker_metrics(socket), "parker_writes_total");
    if (now < 0) return false;
    if (start < 0) start = now;
    return now >= start + more;
  }, 60s);
}

}  // namespace

TEST_CASE("heavy: 200 parked redis-cli subscribers get every message once and in order through a take-over and "
          "a SIGUSR2 hand-over and a parker SIGTERM",
          "[heavy][parking][write_through][takeover][real_clients]") {
  parker::test::TempDir dir;
  ParkerProcess old_parker(dir.file("parker.sock"));
  const std::string socket = old_parker.socket_path();
  auto server = start_parking_server(socket, 200, {"--session-bytes", "16K"});

  // Real subscribers: redis-cli in subscribe mode prints each message (flushed) into its file.
  std::vector<std::unique_ptr<parker::test::Process>> subscribers;
  std::vector<std::string> files;
  for (int i = 0; i < kSubscribers; ++i) {
    files.push_back(dir.file("sub" + std::to_string(i) + ".out"));
    subscribers.push_back(std::make_unique<parker::test::Process>(std::vector<std::string>{
        "/bin/sh", "-c", "exec redis-cli -p " + std::to_string(server->port()) + " SUBSCRIBE news > " + files.back()}));
  }
  REQUIRE(eventually([&] {
    for (const auto& f : files) {
      if (file_text(f).find("subscribe\nnews\n1\n") == std::string::npos) return false;
    }
    return true;
  }, 60s));
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") >= kSubscribers; }, 60s));

  Publisher publisher(server->port());
  REQUIRE(publisher.advance(200));

  // 1: parker --take-over, while publishing.
  parker::test::Process successor({parker::test::program_path("parker"), "--socket", socket, "--take-over"});
  const bool took_over = successor.wait_for_output("listening on", 30s);
  INFO(successor.output());
  REQUIRE(took_over);
  auto status = old_parker.process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  REQUIRE(publisher.advance(200));
  {
    const bool writing = writing_through(socket, 20L * kSubscribers);
    INFO("heavy_server: parked " << info_number(*server, "parked_connections") << ", shards connected "
                                 << info_number(*server, "parker_shards_connected") << ", clients "
                                 << info_number(*server, "connected_clients") << "; parker: parked "
                                 << metric(parker_metrics(socket), "parker_parked_connections") << ", writes "
                                 << metric(parker_metrics(socket), "parker_writes_total") << "\n"
                                 << server->process().output().substr(0, 3000));
    REQUIRE(writing);
  }
  REQUIRE(publisher.advance(200));

  // 2: SIGUSR2 to the successor, which starts its own (not our child: found by its command line).
  successor.signal(SIGUSR2);
  status = successor.wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  auto found = parker::test::find_take_over_parker(socket);
  REQUIRE(found.has_value());
  const pid_t third = *found;
  parker::test::StrayProcess stop_third(third, SIGKILL);
  REQUIRE(third != successor.pid());
  REQUIRE(publisher.advance(200));
  REQUIRE(writing_through(socket, 20L * kSubscribers));
  REQUIRE(publisher.advance(200));

  // 3: SIGTERM: the last parker hands every parked subscriber back to heavy_server and exits.
  REQUIRE(::kill(third, SIGTERM) == 0);
  REQUIRE(eventually([&] { return parker::test::gone(third); }, 30s));
  REQUIRE(publisher.advance(200));
  publisher.stop();
  const long total = publisher.published();
  CHECK_FALSE(publisher.failed());
  CHECK(publisher.miscounted() == 0);  // every PUBLISH counted every subscriber
  RespClient last(server->port());
  CHECK(last.call({"PUBLISH", "news", "end"}) == ":" + std::to_string(kSubscribers) + "\r\n");

  // Every subscriber has it all once "end" has come (it is published last, on one connection).
  const bool all_ended = eventually([&] {
    for (const auto& f : files) {
      if (file_text(f).find("\nend\n") == std::string::npos) return false;
    }
    return true;
  }, 120s);
  if (!all_ended) {
    // Say who is missing what, so that a failure in CI can be read without a rerun.
    std::ostringstream why;
    why << "heavy_server: connected_clients " << info_number(*server, "connected_clients") << ", parked "
        << info_number(*server, "parked_connections") << "\n";
    int missing = 0;
    for (std::size_t i = 0; i < files.size(); ++i) {
      const std::string text = file_text(files[i]);
      if (text.find("\nend\n") != std::string::npos) continue;
      const Received r = check_received(text, total);
      if (missing++ < 5) {
        why << "subscriber " << i << (subscribers[i]->running() ? " (running)" : " (exited)") << ": "
            << r.messages << " messages, " << r.lost << " lost; ends with: "
            << text.substr(text.size() > 60 ? text.size() - 60 : 0) << "\n";
      }
    }
    why << missing << " subscribers without the end\nheavy_server's log:\n";
    server->process().drain_output(1s);
    const std::string& log = server->process().output();
    why << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
    FAIL_CHECK(why.str());
  }
  long lost = 0, duplicated = 0, disorder = 0, unfinished = 0, bad = 0;
  for (const auto& f : files) {
    const Received r = check_received(file_text(f), total);
    lost += r.lost;
    duplicated += r.duplicated;
    disorder += r.disorder;
    unfinished += r.ended ? 0 : 1;
    bad += (r.lost != 0 || r.duplicated != 0 || r.disorder != 0 || !r.ended) ? 1 : 0;
  }
  WARN(total << " messages to " << kSubscribers << " subscribers: " << lost << " lost, " << duplicated
             << " duplicated, " << disorder << " out of order, " << unfinished << " without the end; " << bad
             << " subscribers with any of these");
  CHECK(lost == 0);
  CHECK(duplicated == 0);
  CHECK(disorder == 0);
  CHECK(unfinished == 0);
  CHECK(bad == 0);
  for (auto& s : subscribers) s->signal(SIGTERM);
}
