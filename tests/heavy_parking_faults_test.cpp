// heavy_server without parker: parker not running, or killed with SIGKILL. It keeps serving,
// warns once, parks nothing, and parks again once a parker is back.
#include <catch2/catch.hpp>

#include <thread>

#include "support/fd_count.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using parker::test::open_fd_count;

TEST_CASE("parker not running: heavy_server serves, warns once, parks when parker starts", "[heavy][parking][faults]") {
  parker::test::TempDir dir;
  const std::string socket = dir.file("parker.sock");
  auto server = start_parking_server(socket);
  RespClient client(server->port());
  CHECK(client.call({"SET", "k", "v"}) == "+OK\r\n");
  std::this_thread::sleep_for(600ms);  // well past --park-after: nowhere to park
  CHECK(client.call({"GET", "k"}) == bulk("v"));
  CHECK(info_number(*server, "parks_total") == 0);

  ParkerProcess parker(socket);
  CHECK(eventually([&] { return info_number(*server, "parked_connections") == 1; }, 20s));
  CHECK(client.call({"GET", "k"}) == bulk("v"));
  server->process().drain_output(200ms);
  CHECK(count_of(server->process().output(), "serving without parking") == 1);
  CHECK(server->process().output().find("parking resumes") != std::string::npos);
}

TEST_CASE("parker killed with SIGKILL: active clients keep working, idle ones stay, parking resumes with a new parker",
          "[heavy][parking][faults]") {
  parker::test::TempDir dir;
  const std::string socket = dir.file("parker.sock");
  auto parker = std::make_unique<ParkerProcess>(socket);
  auto server = start_parking_server(socket);
  const std::size_t baseline = open_fd_count(server->pid());

  RespClient lost(server->port());  // parked when parker dies: its socket dies with parker
  CHECK(lost.call({"PING"}) == "+PONG\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
  RespClient active(server->port());
  CHECK(active.call({"SET", "k", "v"}) == "+OK\r\n");

  parker->process().signal(SIGKILL);
  REQUIRE(parker->process().wait(10s).has_value());
  CHECK(active.call({"GET", "k"}) == bulk("v"));
  const long long parks = info_number(*server, "parks_total");
  RespClient idle(server->port());
  CHECK(idle.call({"PING"}) == "+PONG\r\n");
  for (int i = 0; i < 8; ++i) {  // idle for 4 × --park-after, talking now and then
    std::this_thread::sleep_for(100ms);
    CHECK(active.call({"PING"}) == "+PONG\r\n");
  }
  CHECK(info_number(*server, "parks_total") == parks);  // nowhere to park
  CHECK(idle.call({"GET", "k"}) == bulk("v"));

  parker = std::make_unique<ParkerProcess>(socket);
  // The new parker holds none of the old parks: the index forgets them, then parks again.
  CHECK(eventually([&] { return info_number(*server, "parks_total") > parks; }, 20s));
  CHECK(eventually([&] { return info_number(*server, "parked_connections") >= 1; }));
  CHECK(idle.call({"GET", "k"}) == bulk("v"));
  CHECK(active.call({"GET", "k"}) == bulk("v"));
  server->process().drain_output(200ms);
  CHECK(count_of(server->process().output(), "serving without parking") == 1);

  lost.close();
  active.close();
  idle.close();
  CHECK(eventually([&] { return info_number(*server, "parked_connections") == 0; }));
  CHECK(eventually([&] { return open_fd_count(server->pid()) == baseline; }));
}
