// Graceful restart: TERM parks every connection and the listening socket with parker, waits
// for parker to confirm them and leaves its session; a new heavy_server with the same pool
// finds them in parker's inventory and takes them all over. Clients keep their connection, their
// name, their db and their subscriptions, and no connection attempt is refused meanwhile.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

TEST_CASE("TERM and a new heavy_server: clients keep connection, name, db, subscriptions, and the keyspace",
          "[heavy][parking][restart]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  const std::string snapshot = dir.file("keys.snapshot");
  auto first = start_parking_server(parker.socket_path(), 200, {"--snapshot", snapshot});
  const std::uint16_t port = first->port();

  RespClient named(port);
  CHECK(named.call({"CLIENT", "SETNAME", "alice"}) == "+OK\r\n");
  CHECK(named.call({"SELECT", "3"}) == "+OK\r\n");
  CHECK(named.call({"SET", "k", "three"}) == "+OK\r\n");
  RespClient subscriber(port);
  CHECK(subscriber.call({"SUBSCRIBE", "news"}) == "*3\r\n" + bulk("subscribe") + bulk("news") + ":1\r\n");
  RespClient busy(port);
  REQUIRE(eventually([&] { return info_number(*first, "parked_connections") == 3; }));
  CHECK(busy.call({"PING"}) == "+PONG\r\n");  // woken: active at the TERM, parked by the handover

  first->process().signal(SIGTERM);
  auto status = first->process().wait(20s);
  REQUIRE(status.has_value());
  CHECK(parker::test::exit_code(*status) == 0);
  first->process().drain_output(2s);
  CHECK(first->process().output().find("graceful restart: parker holds") != std::string::npos);
  CHECK(first->process().output().find("anyway") == std::string::npos);  // confirmed and left in time

  // Between the two processes parker holds the listener: a new client is queued, not refused.
  RespClient early(port);
  early.send({"PING"});

  auto second = start_parking_server(parker.socket_path(), 200, {"--snapshot", snapshot});
  CHECK(second->port() == port);
  CHECK(second->process().output().find("handed over by parker") != std::string::npos);
  INFO("new heavy_server's log:\n" << second->process().output());
  // It knows the parked clients from parker's inventory, subscriber included, without waking
  // any of them.
  CHECK(second->process().output().find("parker holds 3 connection(s) of pool heavy_server (1 subscriber(s)") !=
        std::string::npos);
  CHECK(info_number(*second, "wakes_total") == 0);

  CHECK(early.reply() == "+PONG\r\n");
  CHECK(named.call({"CLIENT", "GETNAME"}) == bulk("alice"));
  CHECK(named.call({"GET", "k"}) == bulk("three"));  // still db 3
  CHECK(busy.call({"PING"}) == "+PONG\r\n");
  // The subscriber is counted by the new process while it is still parked; PUBLISH recalls it.
  CHECK(second->cli("PUBLISH news hello").output == "1\n");
  CHECK(subscriber.reply() == "*3\r\n" + bulk("message") + bulk("news") + bulk("hello"));
  // The keyspace came through the snapshot.
  CHECK(second->cli("-n 3 GET k").output == "three\n");
}
