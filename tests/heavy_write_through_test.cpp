// heavy_server talks to its parked clients through parker without waking them (protocol 1.1):
// PUBLISH to parked subscribers is written through, PING is answered by keep-alive rule.
// Real parker, real heavy_server, real clients (redis-py via heavy_write_through_clients.py,
// and raw RESP sockets). Pins issue 12: before it, 1,000 parked subscribers receiving 5
// messages and 1,000 parked clients sending 3 PINGs cost 4,000 wakes.
#include <sys/socket.h>

#include <filesystem>

#include <catch2/catch.hpp>

#include "support/heavy_parking_support.hpp"
#include "support/heavy_restart_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

namespace {

const std::vector<std::string> kLightSessions = {"--session-bytes", "16K"};

std::unique_ptr<parker::test::Process> start_driver(std::uint16_t port, const std::string& mode, int n) {
  const std::string script =
      (std::filesystem::path(__FILE__).parent_path() / "heavy_write_through_clients.py").string();
  parker::test::SpawnOptions o;
  o.pipe_stdin = true;
  auto p = std::make_unique<parker::test::Process>(
      std::vector<std::string>{"/usr/bin/python3", script, std::to_string(port), mode, std::to_string(n)}, o);
  if (!p->wait_for_output("ready clients=", 120s) || !p->wait_for_output("\n", 5s)) {
    throw std::runtime_error("the redis-py clients did not start: " + p->output());
  }
  return p;
}

// Waits (bounded) until `n` connections are parked.
bool all_parked(const HeavyServerProcess& server, long long n) {
  return eventually([&] { return info_number(server, "parked_connections") >= n; }, 60s);
}

}  // namespace

TEST_CASE("1000 parked redis-py subscribers get 5 PUBLISHed messages each in order without waking",
          "[heavy][parking][write_through][real_clients]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path(), 200, kLightSessions);
  auto clients = start_driver(server->port(), "subscribers", 1000);
  REQUIRE(all_parked(*server, 1000));
  const long long wakes_before = info_number(*server, "wakes_total");

  clients->write_stdin("publish 5\n");
  const std::string line = driver_line(*clients, "published", "publish", 120s);
  INFO(line << "\n" << clients->output().substr(0, 2000));
  REQUIRE(line.find("published ok") == 0);  // every PUBLISH counted 1000, every message in order
  const long long wakes = info_number(*server, "wakes_total") - wakes_before;
  CHECK(wakes <= 10);  // (almost) none: the 5,000 deliveries cost no wake
  CHECK(info_number(*server, "write_through_messages_total") >= 5000);
  const auto metrics = parker_metrics(parker.socket_path());
  CHECK(metric(metrics, "parker_writes_total") >= 5000);
  clients->write_stdin("stop\n");
  CHECK(clients->wait(30s).has_value());
}

TEST_CASE("1000 parked redis-py clients get PONG for 3 PINGs each from parker without waking",
          "[heavy][parking][keepalive][real_clients]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path(), 200, kLightSessions);
  auto clients = start_driver(server->port(), "pingers", 1000);
  REQUIRE(all_parked(*server, 1000));
  const long long wakes_before = info_number(*server, "wakes_total");

  clients->write_stdin("ping 3\n");
  const std::string line = driver_line(*clients, "pinged", "ping", 120s);
  INFO(line << "\n" << clients->output().substr(0, 2000));
  REQUIRE(line.find("pinged ok") == 0);
  CHECK(info_number(*server, "wakes_total") - wakes_before <= 10);
  CHECK(info_number(*server, "keepalive_parks_total") >= 1000);
  const auto metrics = parker_metrics(parker.socket_path());
  CHECK(metric(metrics, "parker_keepalive_replies_total") >= 3000);
  clients->write_stdin("stop\n");  // the Process stops it if it lingers closing 1,000 clients
}

TEST_CASE("a parked subscriber in subscribed mode gets the subscribed pong from parker", "[heavy][parking][keepalive]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path(), 200, kLightSessions);
  RespClient sub(server->port());
  CHECK(sub.call({"SUBSCRIBE", "news"}) == "*3\r\n" + bulk("subscribe") + bulk("news") + ":1\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
  const long long wakes_before = info_number(*server, "wakes_total");
  CHECK(sub.call({"PING"}) == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  send_all(sub.fd(), "PING\r\n");  // the inline form
  CHECK(sub.reply() == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  CHECK(info_number(*server, "wakes_total") == wakes_before);
}

TEST_CASE("a parked subscriber that does not read still gets every message in order", "[heavy][parking][write_through]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path(), 200, kLightSessions);
  RespClient sub(server->port());
  const int small = 65536;  // a bounded receive window: the server side fills sooner
  ::setsockopt(sub.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  CHECK(sub.call({"SUBSCRIBE", "news"}) == "*3\r\n" + bulk("subscribe") + bulk("news") + ":1\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));

  // 200 messages of 32 KiB (6.4 MiB): more than the socket buffers hold, so parker wakes the
  // subscriber with what did not fit, and heavy_server delivers that and the rest in order.
  RespClient publisher(server->port());
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    std::string message = std::to_string(i) + ":" + std::string(32 * 1024, static_cast<char>('a' + i % 26));
    REQUIRE(publisher.call({"PUBLISH", "news", message}) == ":1\r\n");
  }
  for (int i = 0; i < n; ++i) {
    std::string message = std::to_string(i) + ":" + std::string(32 * 1024, static_cast<char>('a' + i % 26));
    REQUIRE(sub.reply(30s) == "*3\r\n" + bulk("message") + bulk("news") + bulk(message));
  }
  CHECK(metric(parker_metrics(parker.socket_path()), "parker_wakes_total{reason=\"write_blocked\"}") >= 1);
}

TEST_CASE("a parked client that pipelines PING with another command is woken and served in order",
          "[heavy][parking][keepalive]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path(), 200, kLightSessions);
  RespClient client(server->port());
  CHECK(client.call({"SET", "k", "v"}) == "+OK\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
  const long long wakes_before = info_number(*server, "wakes_total");
  send_all(client.fd(), resp_command({"PING"}) + resp_command({"GET", "k"}));
  CHECK(client.reply() == "+PONG\r\n");
  CHECK(client.reply() == bulk("v"));
  CHECK(info_number(*server, "wakes_total") == wakes_before + 1);
}
