// The real heavy_server program against real clients nobody here wrote: redis-cli and
// redis-benchmark (Debian's redis-tools), plus raw sockets for what those never send —
// malformed and oversized requests, clients vanishing mid-request. After each abuse the server
// must still serve and its descriptor count must come back to its baseline.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>

#include "support/fd_count.hpp"
#include "support/heavy_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using parker::test::open_fd_count;

namespace {

// The server's fds settle back to `baseline` once the clients are gone.
bool fds_back_to(const HeavyServerProcess& server, std::size_t baseline) {
  return eventually([&] { return open_fd_count(server.pid()) == baseline; }, 10s);
}

// The server's fds with no client: taken before the first one connects (everything the
// server needs is open once it logs "listening on").
std::size_t idle_fd_count(HeavyServerProcess& server) { return open_fd_count(server.pid()); }

void require_tools() {
  if (find_program("redis-cli").empty() || find_program("redis-benchmark").empty()) {
    FAIL("redis-tools (redis-cli, redis-benchmark) are required: apt-get install redis-tools");
  }
}

}  // namespace

TEST_CASE("heavy_server --help describes every option and exits 0, a bad option exits non-zero",
          "[heavy][integration]") {
  auto help = parker::test::run_command(parker::test::program_path("heavy_server") + " --help");
  CHECK(help.code == 0);
  for (const char* option : {"--port", "--bind", "--parker", "--pool", "--park-after", "--session-bytes",
                             "--log-level", "--snapshot"}) {
    INFO(option);
    CHECK(help.output.find(option) != std::string::npos);
  }
  auto bad = parker::test::run_command(parker::test::program_path("heavy_server") + " --no-such-flag");
  CHECK(bad.code != 0);
  CHECK(bad.output.find("no-such-flag") != std::string::npos);
  auto level = parker::test::run_command(parker::test::program_path("heavy_server") + " --log-level loud");
  CHECK(level.code != 0);
}

TEST_CASE("redis-cli: SET and GET", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server;
  CHECK(server.cli("SET greeting hello").output == "OK\n");
  CHECK(server.cli("GET greeting").output == "hello\n");
  CHECK(server.cli("GET missing").output == "\n");
  CHECK(server.cli("INCR counter").output == "1\n");
  CHECK(server.cli("SET t v EX 100").output == "OK\n");
  CHECK(server.cli("TTL t").output == "100\n");
}

TEST_CASE("redis-cli: SELECT 3 and CLIENT SETNAME hold for the connection", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server;
  // Commands piped into one redis-cli run on one connection.
  auto r = parker::test::run_command("printf 'SELECT 3\\nCLIENT SETNAME alice\\nCLIENT GETNAME\\nSET k three\\nGET k\\n' | "
                                     "redis-cli -p " + std::to_string(server.port()));
  CHECK(r.output == "OK\nOK\nalice\nOK\nthree\n");
  CHECK(server.cli("GET k").output == "\n");
  CHECK(server.cli("-n 3 GET k").output == "three\n");
  CHECK(server.cli("CLIENT GETNAME").output == "\n");  // a new connection has no name
}

TEST_CASE("redis-cli: MULTI and EXEC", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server;
  auto r = parker::test::run_command("printf 'MULTI\\nSET a 1\\nINCR a\\nGET a\\nEXEC\\n' | redis-cli -p " +
                                     std::to_string(server.port()));
  CHECK(r.output == "OK\nQUEUED\nQUEUED\nQUEUED\nOK\n2\n2\n");
  CHECK(server.cli("GET a").output == "2\n");
}

TEST_CASE("redis-cli subscribe receives what PUBLISH sends, and PUBLISH counts it", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server;
  parker::test::Process subscriber(
      {find_program("redis-cli"), "-p", std::to_string(server.port()), "subscribe", "news"});
  REQUIRE(subscriber.wait_for_output("subscribe\nnews\n1\n"));
  CHECK(server.cli("PUBLISH news hello").output == "1\n");
  CHECK(subscriber.wait_for_output("message\nnews\nhello\n"));
  CHECK(server.cli("PUBLISH other x").output == "0\n");
  CHECK(server.info_field("pubsub_clients") == "1");
  subscriber.signal(SIGKILL);
  (void)subscriber.wait();
  CHECK(eventually([&] { return server.cli("PUBLISH news gone").output == "0\n"; }));
}

TEST_CASE("INFO reports the parking, client and memory fields", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server;
  const std::string info = server.cli("INFO").output;
  for (const char* field : {"redis_version:", "tcp_port:" , "connected_clients:1", "used_memory_rss:",
                            "parked_connections:0", "active_connections:1", "parks_total:0", "wakes_total:0",
                            "park_failures_total:0"}) {
    INFO(field);
    CHECK(info.find(field) != std::string::npos);
  }
  CHECK(std::stoull(server.info_field("used_memory_rss")) > 0);
  CHECK(server.info_field("tcp_port") == std::to_string(server.port()));
  const std::string parking = server.cli("INFO parking").output;
  CHECK(parking.find("# Parking") != std::string::npos);
  CHECK(parking.find("# Server") == std::string::npos);
}

TEST_CASE("each active session weighs its working set in RSS until it goes", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server({"--session-bytes", "1M"});
  const auto rss_before = std::stoull(server.info_field("used_memory_rss"));
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 32; ++i) {
    clients.push_back(connect_tcp(server.port()));
    send_all(clients.back().get(), "PING\r\n");
    CHECK(recv_bytes(clients.back().get(), 7) == "+PONG\r\n");
  }
  const auto rss_with = std::stoull(server.info_field("used_memory_rss"));
  CHECK(rss_with >= rss_before + 32ull * 1024 * 1024 * 9 / 10);
  clients.clear();
  CHECK(eventually([&] { return server.info_field("active_connections") == "1"; }));
  const auto rss_after = std::stoull(server.info_field("used_memory_rss"));
  CHECK(rss_after < rss_with - 32ull * 1024 * 1024 * 8 / 10);
}

TEST_CASE("redis-benchmark ping, set, get: 20000 requests from 50 clients without errors", "[heavy][integration]") {
  require_tools();
  HeavyServerProcess server;
  const std::size_t baseline = idle_fd_count(server);
  auto r = parker::test::run_command(
      "redis-benchmark -p " + std::to_string(server.port()) + " -t ping,set,get -n 20000 -c 50 -q", 120s);
  INFO(r.output);
  CHECK(r.code == 0);
  for (const char* test : {"PING_INLINE:", "PING_MBULK:", "SET:", "GET:"}) CHECK(r.output.find(test) != std::string::npos);
  CHECK(r.output.find("rror") == std::string::npos);
  CHECK(server.info_field("total_protocol_errors") == "0");
  CHECK(fds_back_to(server, baseline));
}

TEST_CASE("pipelined requests are all answered, in order", "[heavy][integration]") {
  HeavyServerProcess server;
  auto client = connect_tcp(server.port());
  std::string batch, expected;
  for (int i = 0; i < 1000; ++i) {
    batch += "*2\r\n$4\r\nECHO\r\n$" + std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) + "\r\n";
    expected += "$" + std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) + "\r\n";
  }
  send_all(client.get(), batch + "PING\r\n");
  expected += "+PONG\r\n";
  CHECK(recv_bytes(client.get(), expected.size()) == expected);
}

TEST_CASE("malformed RESP gets a protocol error and that connection is closed, others are untouched",
          "[heavy][integration]") {
  HeavyServerProcess server;
  const std::size_t baseline = idle_fd_count(server);
  auto bystander = connect_tcp(server.port());
  send_all(bystander.get(), "SET k v\r\n");
  REQUIRE(recv_bytes(bystander.get(), 5) == "+OK\r\n");

  const std::pair<std::string, std::string> cases[] = {
      {"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
      {"*2\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
      {"SET k \"open\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
      {"*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after bulk data\r\n"},
  };
  for (const auto& [request, reply] : cases) {
    INFO(request);
    auto c = connect_tcp(server.port());
    // A good request before the bad one is answered first.
    send_all(c.get(), "PING\r\n" + request);
    bool eof = false;
    CHECK(recv_bytes(c.get(), 7 + reply.size() + 1, 10s, &eof) == "+PONG\r\n" + reply);
    CHECK((eof || closed_by_peer(c.get())));
  }
  send_all(bystander.get(), "GET k\r\n");
  CHECK(recv_bytes(bystander.get(), 7) == "$1\r\nv\r\n");
  CHECK(server.info_field("total_protocol_errors") == "5");
  bystander.reset();
  CHECK(fds_back_to(server, baseline));
}

TEST_CASE("oversized requests are refused from their header, before any memory is spent", "[heavy][integration]") {
  HeavyServerProcess server;
  const std::size_t baseline = idle_fd_count(server);
  {
    auto c = connect_tcp(server.port());
    send_all(c.get(), "*1\r\n$1000000000\r\n");
    CHECK(recv_bytes(c.get(), 100) == "-ERR Protocol error: invalid bulk length\r\n");
  }
  {
    auto c = connect_tcp(server.port());
    send_all(c.get(), "*100000000\r\n");
    CHECK(recv_bytes(c.get(), 100) == "-ERR Protocol error: invalid multibulk length\r\n");
  }
  {
    auto c = connect_tcp(server.port());
    send_all(c.get(), std::string(70 * 1024, 'a'));  // an inline line with no end
    CHECK(recv_bytes(c.get(), 100) == "-ERR Protocol error: too big inline request\r\n");
  }
  CHECK(server.cli("PING").output == "PONG\n");
  CHECK(fds_back_to(server, baseline));
}

TEST_CASE("a large value within the limits goes through", "[heavy][integration]") {
  HeavyServerProcess server;
  auto c = connect_tcp(server.port());
  const std::string value(8 * 1024 * 1024, 'x');
  send_all(c.get(), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n");
  CHECK(recv_bytes(c.get(), 5) == "+OK\r\n");
  send_all(c.get(), "STRLEN big\r\nGET big\r\n");
  const std::string expected = "-ERR unknown command 'STRLEN', with args beginning with: 'big' \r\n$8388608\r\n" + value + "\r\n";
  CHECK(recv_bytes(c.get(), expected.size(), 30s) == expected);
}

TEST_CASE("clients closing mid-request leave nothing behind", "[heavy][integration]") {
  HeavyServerProcess server;
  const std::size_t baseline = idle_fd_count(server);
  for (const char* partial : {"*3\r\n$3\r\nSET\r\n$1\r\nk", "*1\r\n$100000\r\nabc", "GET k", "*2\r"}) {
    auto c = connect_tcp(server.port());
    send_all(c.get(), partial);
  }
  {
    // A client that sends many requests and leaves without reading the replies.
    auto c = connect_tcp(server.port());
    std::string flood;
    for (int i = 0; i < 20000; ++i) flood += "PING\r\n";
    send_all(c.get(), flood);
  }
  CHECK(fds_back_to(server, baseline));
  CHECK(server.cli("PING").output == "PONG\n");
  CHECK(server.info_field("active_connections") == "1");
}

TEST_CASE("TERM: stop accepting, finish the request in progress, exit 0", "[heavy][integration]") {
  HeavyServerProcess server;
  auto busy = connect_tcp(server.port());
  auto idle = connect_tcp(server.port());
  send_all(idle.get(), "PING\r\n");
  REQUIRE(recv_bytes(idle.get(), 7) == "+PONG\r\n");
  send_all(busy.get(), "*2\r\n$4\r\nECHO\r\n$4\r\nla");
  REQUIRE(eventually([&] { return server.info_field("active_connections") == "3"; }));  // + the INFO client
  server.process().signal(SIGTERM);
  CHECK(closed_by_peer(idle.get()));
  send_all(busy.get(), "st\r\n");
  bool eof = false;
  CHECK(recv_bytes(busy.get(), 10, 10s, &eof) == "$4\r\nlast\r\n");
  CHECK((eof || closed_by_peer(busy.get())));
  auto status = server.process().wait(10s);
  REQUIRE(status);
  CHECK(parker::test::exit_code(*status) == 0);
  CHECK_THROWS(connect_tcp(server.port()));
}

TEST_CASE("with --snapshot the keyspace is written on TERM and read at the next start", "[heavy][integration]") {
  require_tools();
  parker::test::TempDir dir;
  const std::string file = dir.file("keys.snapshot");
  {
    HeavyServerProcess server({"--snapshot", file});
    CHECK(server.cli("SET plain value").output == "OK\n");
    CHECK(server.cli("-n 5 SET five 5").output == "OK\n");
    CHECK(server.cli("SET ttl soon EX 1000").output == "OK\n");
    server.process().signal(SIGTERM);
    auto status = server.process().wait(10s);
    REQUIRE(status);
    CHECK(parker::test::exit_code(*status) == 0);
  }
  REQUIRE(std::filesystem::exists(file));
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator{}) == 1);
  {
    HeavyServerProcess server({"--snapshot", file});
    CHECK(server.cli("GET plain").output == "value\n");
    CHECK(server.cli("-n 5 GET five").output == "5\n");
    const int ttl = std::stoi(server.cli("TTL ttl").output);
    CHECK(ttl > 900);
    CHECK(ttl <= 1000);
    server.process().signal(SIGINT);
    auto status = server.process().wait(10s);
    REQUIRE(status);
    CHECK(parker::test::exit_code(*status) == 0);
  }
  // A damaged snapshot stops the start with a clear error rather than being overwritten.
  {
    std::FILE* f = std::fopen(file.c_str(), "r+b");
    REQUIRE(f != nullptr);
    std::fseek(f, 20, SEEK_SET);
    std::fputc('!', f);
    std::fclose(f);
  }
  auto r = parker::test::run_command(parker::test::program_path("heavy_server") + " --port 0 --snapshot " + file);
  CHECK(r.code == 1);
  CHECK(r.output.find("cannot load snapshot") != std::string::npos);
}
