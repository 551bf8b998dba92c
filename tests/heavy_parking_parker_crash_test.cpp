// parker SIGKILLed under a heavy_server with parked clients, some of them speaking at that very
// moment: with --keeper, the next parker takes every connection back from parker-keeper, and
// every client is answered exactly once, with its session.
#include <catch2/catch.hpp>

#include <csignal>
#include <string>
#include <vector>

#include "parker/unix_socket.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

TEST_CASE("heavy: parker SIGKILLed with 1000 parked clients and every one answered once with its session by the next",
          "[heavy][parking][keeper]") {
  constexpr int kClients = 1000;
  parker::test::TempDir dir;
  const std::string socket = dir.file("parker.sock");
  auto first = std::make_unique<ParkerProcess>(socket, std::vector<std::string>{"--keeper"});
  auto server = start_parking_server(socket);
  auto clients = parked_clients_with_sessions(*server, kClients);
  REQUIRE(clients.size() == kClients);

  // The worst moment: half the clients speak, and parker dies while their wakes are on the way
  // (some not seen yet, some woken and not acknowledged, some adopted by heavy_server).
  for (int i = 0; i < kClients; i += 2) clients[i]->send({"CLIENT", "GETNAME"});
  first->process().signal(SIGKILL);
  REQUIRE(first->process().wait(10s).has_value());

  ParkerProcess second(socket, {"--keeper"});
  CHECK(second.process().wait_for_output("restored from the keeper", 10s));
  for (int i = 1; i < kClients; i += 2) clients[i]->send({"CLIENT", "GETNAME"});
  CHECK(answered_with_their_names(clients) == kClients);
  // Exactly once: a connection served twice would answer twice, or not at all, from here on.
  for (auto& c : clients) c->send({"PING"});
  int pongs = 0;
  for (auto& c : clients) pongs += c->reply(30s) == "+PONG\r\n" ? 1 : 0;
  CHECK(pongs == kClients);
  CHECK(dbs_kept(clients));  // their db survived too

  // A clean stop hands everything back and lets the keeper go.
  second.process().signal(SIGTERM);
  auto status = second.process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  CHECK(eventually([&] { return !parker::connect_unix(socket + ".keeper").ok(); }, 10s));
}
