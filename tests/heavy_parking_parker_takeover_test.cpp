// parker itself is replaced under a heavy_server with parked clients: a successor takes every
// connection over (`parker --take-over`), the old parker exits 0, heavy_server reconnects by
// itself — and every client, parked all along, is answered with its session afterwards.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

TEST_CASE("heavy: parker replaced by its successor under 500 parked clients and every one answered with its session",
          "[heavy][parking][takeover]") {
  constexpr int kClients = 500;
  parker::test::TempDir dir;
  ParkerProcess old_parker(dir.file("parker.sock"));
  auto server = start_parking_server(old_parker.socket_path());
  std::vector<std::unique_ptr<RespClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RespClient>(server->port()));
    clients.back()->send({"CLIENT", "SETNAME", "c" + std::to_string(i)});
    clients.back()->send({"SELECT", std::to_string(i % 16)});
  }
  for (auto& c : clients) {
    REQUIRE(c->reply(30s) == "+OK\r\n");
    REQUIRE(c->reply(30s) == "+OK\r\n");
  }
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == kClients; }, 60s));

  parker::test::Process successor(
      {parker::test::program_path("parker"), "--socket", old_parker.socket_path(), "--take-over"});
  REQUIRE(successor.wait_for_output("listening on", 30s));
  auto status = old_parker.process().wait(30s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  CHECK(successor.wait_for_output("took over " + std::to_string(kClients) + " parked", 10s));

  // heavy_server's session was ended by the old parker; it reconnects to the successor, which
  // holds the wakes of clients that speak before it is back.
  int answered = 0;
  for (int i = 0; i < kClients; ++i) clients[i]->send({"CLIENT", "GETNAME"});
  for (int i = 0; i < kClients; ++i) {
    std::string name = "c" + std::to_string(i);
    answered += clients[i]->reply(30s) == "$" + std::to_string(name.size()) + "\r\n" + name + "\r\n" ? 1 : 0;
  }
  CHECK(answered == kClients);
  // And their db: a key set in db i%16 is seen there only.
  clients[3]->send({"SET", "k", "v"});
  REQUIRE(clients[3]->reply(30s) == "+OK\r\n");
  clients[19]->send({"GET", "k"});  // db 3 too
  CHECK(clients[19]->reply(30s) == "$1\r\nv\r\n");
  clients[4]->send({"GET", "k"});   // db 4
  CHECK(clients[4]->reply(30s) == "$-1\r\n");
  successor.signal(SIGTERM);
  CHECK(successor.wait(30s).has_value());
}
