// What is parkable, and the limits an operator knows from redis (issue 9): a connection
// holding a partial request parks with its bytes; --timeout closes idle clients, parked or not,
// but not subscribers; the query and output buffer limits close the clients that pass them.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

namespace {

constexpr int kPartialClients = 500;

}  // namespace

// Before: never parked, 500 × 256 KiB pinned (RSS 6 → 136 MB).
TEST_CASE("500 clients each holding a partial request are parked, and each request completes after",
          "[heavy][parking][limits]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path(), 200);
  std::vector<std::unique_ptr<RespClient>> clients;
  for (int i = 0; i < kPartialClients; ++i) {
    clients.push_back(std::make_unique<RespClient>(server->port()));
    send_all(clients.back()->fd(), "*3\r\n$3\r\nSET\r\n$" + std::to_string(std::to_string(i).size()) + "\r\n");
  }
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == kPartialClients; }, 60s));
  // Their sessions are freed: only the INFO asker is served here.
  CHECK(info_number(*server, "active_connections") == 1);
  int answered = 0;
  for (int i = 0; i < kPartialClients; ++i) send_all(clients[i]->fd(), std::to_string(i) + "\r\n$1\r\nv\r\n");
  for (auto& c : clients) answered += c->reply(30s) == "+OK\r\n";
  CHECK(answered == kPartialClients);
  CHECK(server->cli("DBSIZE").output == std::to_string(kPartialClients) + "\n");
}

TEST_CASE("idle clients are closed after --timeout, parked or served, never subscribers, and CONFIG GET shows it",
          "[heavy][parking][limits]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto parking = start_parking_server(parker.socket_path(), 100, {"--timeout", "1"});
  HeavyServerProcess plain({"--parker", "", "--timeout", "1"});
  CHECK(parking->cli("CONFIG GET timeout").output == "timeout\n1\n");

  RespClient parked(parking->port());
  RespClient served(plain.port());
  RespClient subscriber(parking->port());
  CHECK(subscriber.call({"SUBSCRIBE", "news"}).starts_with("*3\r\n"));
  CHECK(parked.call({"PING"}) == "+PONG\r\n");
  CHECK(served.call({"PING"}) == "+PONG\r\n");
  REQUIRE(eventually([&] { return info_number(*parking, "parked_connections") == 2; }));
  CHECK(closed_by_peer(parked.fd(), 10s));  // parker closed it at its deadline
  CHECK(closed_by_peer(served.fd(), 10s));
  CHECK(info_number(plain, "timed_out_clients") == 1);
  // The subscriber outlived both, and is still served.
  CHECK(parking->cli("PUBLISH news still-here").output == "1\n");
  CHECK(subscriber.reply() == "*3\r\n" + bulk("message") + bulk("news") + bulk("still-here"));
}

TEST_CASE("the query buffer limit closes a client whose unparsed input grows past it", "[heavy][limits]") {
  HeavyServerProcess server({"--parker", "", "--client-query-buffer-limit", "64kb"});
  CHECK(server.cli("CONFIG GET client-query-buffer-limit").output == "client-query-buffer-limit\n65536\n");
  RespClient client(server.port());
  send_all(client.fd(), "*2\r\n$4\r\nECHO\r\n$200000\r\n" + std::string(100000, 'x'));
  CHECK(closed_by_peer(client.fd(), 10s));
  RespClient other(server.port());
  CHECK(other.call({"PING"}) == "+PONG\r\n");  // nobody else is affected
}

TEST_CASE("output buffer limits close a subscriber or a client that does not read", "[heavy][limits]") {
  HeavyServerProcess server({"--parker", "", "--client-output-buffer-limit", "pubsub 256kb 0 0",
                             "--client-output-buffer-limit", "normal 256kb 0 0"});
  CHECK(server.cli("CONFIG GET client-output-buffer-limit").output ==
        "client-output-buffer-limit\nnormal 262144 0 0 slave 268435456 67108864 60 pubsub 262144 0 0\n");
  RespClient subscriber(server.port());
  CHECK(subscriber.call({"SUBSCRIBE", "news"}).starts_with("*3\r\n"));
  RespClient publisher(server.port());
  const std::string big(100000, 'm');
  // More than the kernel's socket buffers hold, so the rest piles up in heavy_server.
  for (int i = 0; i < 400 && publisher.call({"PUBLISH", "news", big}) == ":1\r\n"; ++i) {
  }
  CHECK(publisher.call({"PUBLISH", "news", "x"}) == ":0\r\n");  // the subscriber is gone
  CHECK(info_number(server, "client_limit_closes") == 1);

  CHECK(publisher.call({"SET", "big", big}) == "+OK\r\n");
  RespClient reader(server.port());
  std::string pipeline;
  for (int i = 0; i < 400; ++i) pipeline += resp_command({"GET", "big"});
  send_all(reader.fd(), pipeline);  // and read nothing until the server has given up on it
  REQUIRE(eventually([&] { return info_number(server, "client_limit_closes") == 2; }, 20s));
  CHECK(closed_by_peer(reader.fd(), 20s));
}
