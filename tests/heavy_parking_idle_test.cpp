// Many idle clients: redis-benchmark's idle mode holds 1000 connections that never speak.
// heavy_server parks them all and its memory falls to an index entry each; they still work.
// And the busy path: redis-benchmark's usual run completes without errors with parking on.
#include <catch2/catch.hpp>

#include <vector>

#include "support/fd_count.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using parker::test::open_fd_count;

namespace {

constexpr int kIdleClients = 1000;
constexpr std::size_t kSessionBytes = 256 * 1024;  // heavy_server's default working set

// redis-benchmark -I -c N: N idle connections, held until it is killed.
std::unique_ptr<parker::test::Process> idle_benchmark(std::uint16_t port) {
  return std::make_unique<parker::test::Process>(std::vector<std::string>{
      find_program("redis-benchmark"), "-p", std::to_string(port), "-I", "-c", std::to_string(kIdleClients)});
}

}  // namespace

TEST_CASE("redis-benchmark -I -c 1000: all parked, RSS falls by their sessions, and they still work",
          "[heavy][parking][idle]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto parking = start_parking_server(parker.socket_path());
  HeavyServerProcess reference({"--parker", ""});  // no parking: the cost of 1000 idle sessions
  const std::size_t baseline = open_fd_count(parking->pid());

  {
    auto held_parked = idle_benchmark(parking->port());
    auto held_active = idle_benchmark(reference.port());
    REQUIRE(eventually([&] { return info_number(*parking, "parked_connections") == kIdleClients; }, 60s));
    REQUIRE(eventually([&] { return info_number(reference, "active_connections") == kIdleClients + 1; }, 60s));
    const std::size_t rss_parked = rss_bytes(parking->pid());
    const std::size_t rss_active = rss_bytes(reference.pid());
    INFO("RSS with 1000 idle clients: parked " << rss_parked << " bytes, not parked " << rss_active << " bytes");
    CHECK(rss_active > kIdleClients * kSessionBytes);
    CHECK(rss_parked + kIdleClients * kSessionBytes / 2 < rss_active);
    CHECK(info_number(*parking, "active_connections") == 1);  // the INFO asker
    CHECK(info_number(*parking, "park_failures_total") == 0);
  }  // redis-benchmark killed: parker reports the hang-ups

  REQUIRE(eventually([&] { return info_number(*parking, "parked_connections") == 0; }, 30s));
  REQUIRE(eventually([&] { return open_fd_count(parking->pid()) == baseline; }));

  // The same with our own clients, which then speak: each is woken and answered.
  std::vector<std::unique_ptr<RespClient>> clients;
  for (int i = 0; i < kIdleClients; ++i) clients.push_back(std::make_unique<RespClient>(parking->port()));
  INFO("parked: " << info_number(*parking, "parked_connections"));
  REQUIRE(eventually([&] { return info_number(*parking, "parked_connections") == kIdleClients; }, 60s));
  const long long wakes = info_number(*parking, "wakes_total");
  int answered = 0;
  // ECHO, not PING: parker answers a parked connection's PING itself (keep-alive rule), and
  // this is about every parked client coming back to the server.
  for (auto& c : clients) c->send({"ECHO", "hi"});
  for (auto& c : clients) answered += c->reply(30s) == "$2\r\nhi\r\n" ? 1 : 0;
  CHECK(answered == kIdleClients);
  CHECK(info_number(*parking, "wakes_total") >= wakes + kIdleClients);
  clients.clear();
  CHECK(eventually([&] { return info_number(*parking, "parked_connections") == 0; }, 30s));
  CHECK(eventually([&] { return open_fd_count(parking->pid()) == baseline; }));
}

TEST_CASE("redis-benchmark -t ping,set,get -n 100000 -c 50 completes without errors with parking on",
          "[heavy][parking][benchmark]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  auto server = start_parking_server(parker.socket_path());
  auto run = parker::test::run_command("redis-benchmark -p " + std::to_string(server->port()) +
                                           " -t ping,set,get -n 100000 -c 50 -q 2>&1",
                                       300s);
  INFO(run.output);
  CHECK(run.code == 0);
  CHECK(run.output.find("GET:") != std::string::npos);
  CHECK(run.output.find("ERR") == std::string::npos);
  CHECK(run.output.find("rror") == std::string::npos);
  CHECK(info_number(*server, "park_failures_total") == 0);
}
