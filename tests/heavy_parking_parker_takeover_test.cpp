// parker itself is replaced under a heavy_server with parked clients, twice: a successor takes
// every connection over (`parker --take-over`), then that one is sent SIGUSR2 and starts its
// own successor. Each old parker exits 0, heavy_server reconnects by itself, new clients keep
// arriving every 20 ms all the while and are all served, and every client, parked all along, is
// answered with its session afterwards.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

namespace {

// A new client every 20 ms, each asking one ECHO of heavy_server, until destroyed. Connecting
// goes to heavy_server's own listener; what it tests is that heavy_server, its parker session
// ended by each hand-over, goes on serving new clients while it reconnects.
class Arrivals {
 public:
  explicit Arrivals(std::uint16_t port)
      : thread_([this, port] {
          while (!stop_) {
            const std::string word = "arrival-" + std::to_string(++tried_);
            try {
              RespClient c(port);
              c.send({"ECHO", word});
              if (c.reply(10s) == bulk_reply(word)) ++served_;
            } catch (const std::exception&) {
              // not served: counted by tried - served
            }
            std::this_thread::sleep_for(20ms);  // the pace of arrivals, not a wait for anything
          }
        }) {}
  Arrivals(const Arrivals&) = delete;
  Arrivals& operator=(const Arrivals&) = delete;
  ~Arrivals() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] int tried() const { return tried_; }
  [[nodiscard]] int served() const { return served_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> tried_{0};
  std::atomic<int> served_{0};
  std::thread thread_;
};


}  // namespace

TEST_CASE("heavy: parker replaced by --take-over and then by SIGUSR2 under 500 parked clients and new ones arriving",
          "[heavy][parking][takeover]") {
  constexpr int kClients = 500;
  parker::test::TempDir dir;
  ParkerProcess old_parker(dir.file("parker.sock"));
  const std::string socket = old_parker.socket_path();
  auto server = start_parking_server(socket);
  auto clients = parked_clients_with_sessions(*server, kClients);
  REQUIRE(clients.size() == kClients);
  Arrivals arrivals(server->port());

  // 1: parker --take-over.
  parker::test::Process successor({parker::test::program_path("parker"), "--socket", socket, "--take-over"});
  REQUIRE(successor.wait_for_output("listening on", 30s));
  auto status = old_parker.process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  CHECK(successor.wait_for_output("took over " + std::to_string(kClients) + " parked", 10s));

  // heavy_server's session was ended by the old parker; it reconnects to the successor, which
  // holds the wakes of clients that speak before it is back.
  for (auto& c : clients) c->send({"CLIENT", "GETNAME"});
  CHECK(answered_with_their_names(clients) == kClients);
  REQUIRE(eventually([&] { return metric(parker_metrics(socket), "parker_parked_connections") == kClients; }, 60s));

  // 2: SIGUSR2 (what `systemctl reload` sends): the successor starts its own successor, with
  // the same command line, which is not our child: found by it once this one has gone.
  successor.signal(SIGUSR2);
  status = successor.wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  auto found = parker::test::find_take_over_parker(socket);
  REQUIRE(found.has_value());
  const pid_t third = *found;
  parker::test::StrayProcess stop_third(third, SIGTERM);
  REQUIRE(third != successor.pid());

  for (auto& c : clients) c->send({"CLIENT", "GETNAME"});
  CHECK(answered_with_their_names(clients) == kClients);
  CHECK(dbs_kept(clients));  // and their db: a key set in db i%16 is seen there only
  arrivals.stop();
  INFO(arrivals.tried() << " clients arrived during both hand-overs");
  CHECK(arrivals.tried() > 0);
  CHECK(arrivals.served() == arrivals.tried());
}

TEST_CASE("heavy: a parked client's PING is answered by the successor parker while heavy_server is stopped",
          "[heavy][parking][takeover][keepalive]") {
  parker::test::TempDir dir;
  ParkerProcess old_parker(dir.file("parker.sock"));
  const std::string socket = old_parker.socket_path();
  auto server = start_parking_server(socket, 200, {"--session-bytes", "16K"});
  RespClient client(server->port());
  CHECK(client.call({"SET", "k", "v"}) == "+OK\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
  // heavy_server can neither reconnect nor declare its rules again until SIGCONT.
  server->process().signal(SIGSTOP);
  struct ContinueAtEnd {
    parker::test::Process& p;
    ~ContinueAtEnd() { p.signal(SIGCONT); }
  } resume{server->process()};

  parker::test::Process successor({parker::test::program_path("parker"), "--socket", socket, "--take-over"});
  REQUIRE(successor.wait_for_output("listening on", 30s));
  auto status = old_parker.process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  CHECK(successor.wait_for_output("keep-alive rule set", 10s));

  const long long replies_before = metric(parker_metrics(socket), "parker_keepalive_replies_total");
  CHECK(client.call({"PING"}, 5s) == "+PONG\r\n");  // without the rules: held, no reply
  CHECK(metric(parker_metrics(socket), "parker_keepalive_replies_total") == replies_before + 1);
  CHECK(metric(parker_metrics(socket), "parker_held_wakes") == 0);

  // Back: heavy_server reconnects to the successor and serves the client with its session.
  server->process().signal(SIGCONT);
  CHECK(client.call({"GET", "k"}) == "$1\r\nv\r\n");
  successor.signal(SIGTERM);
  CHECK(successor.wait(20s).has_value());
}
