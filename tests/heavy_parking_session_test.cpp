// heavy_server parks a quiet connection with a real parker and restores its session when the
// client speaks again: the client sees only normal replies.
#include <catch2/catch.hpp>

#include "support/fd_count.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using parker::test::open_fd_count;

TEST_CASE("redis-cli: db and name survive parking, INFO shows the park and the wake", "[heavy][parking]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path());

  // One redis-cli process fed through a pipe: one connection for all its commands.
  parker::test::Process cli({find_program("redis-cli"), "-p", std::to_string(server->port())},
                            parker::test::SpawnOptions{.pipe_stdin = true});
  cli.write_stdin("SET greeting hello\nSELECT 3\nCLIENT SETNAME alice\nSET k three\n");
  REQUIRE(cli.wait_for_output("OK\nOK\nOK\nOK\n"));

  // Past --park-after it is parked: only the redis-cli asking INFO is active.
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
  CHECK(info_number(*server, "parks_total") >= 1);

  cli.write_stdin("CLIENT GETNAME\nGET k\nSELECT 0\nGET greeting\n");
  REQUIRE(cli.wait_for_output("alice\nthree\nOK\nhello\n"));
  CHECK(info_number(*server, "wakes_total") >= 1);
  CHECK(server->info_field("park_failures_total") == "0");

  cli.close_stdin();
  REQUIRE(cli.wait(10s).has_value());
}

TEST_CASE("a parked client's MULTI queue and counters survive, and the server's fds come back to baseline",
          "[heavy][parking]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path());
  // "listening on" comes after the session with parker is up: its fd is in the baseline.
  REQUIRE(server->process().output().find("parking idle connections") != std::string::npos);
  const std::size_t baseline = open_fd_count(server->pid());

  {
    RespClient client(server->port());
    CHECK(client.call({"SELECT", "5"}) == "+OK\r\n");
    CHECK(client.call({"MULTI"}) == "+OK\r\n");
    CHECK(client.call({"SET", "x", "1"}) == "+QUEUED\r\n");
    REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
    CHECK(client.call({"INCR", "x"}) == "+QUEUED\r\n");  // woken: still inside MULTI
    CHECK(client.call({"EXEC"}) == "*2\r\n+OK\r\n:2\r\n");
    REQUIRE(eventually([&] { return info_number(*server, "parked_connections") == 1; }));
    CHECK(client.call({"GET", "x"}) == bulk("2"));  // still db 5
  }
  // The client left while active or parked: either way nothing stays behind.
  RespClient parked_then_gone(server->port());
  CHECK(parked_then_gone.call({"PING"}) == "+PONG\r\n");
  REQUIRE(eventually([&] { return info_number(*server, "parked_connections") >= 1; }));
  parked_then_gone.close();  // parker sees the hang-up and reports it: the index entry goes
  CHECK(eventually([&] { return info_number(*server, "parked_connections") == 0; }));
  CHECK(eventually([&] { return open_fd_count(server->pid()) == baseline; }));
}
