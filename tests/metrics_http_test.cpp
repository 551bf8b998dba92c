// parker --metrics-listen: GET /metrics over real HTTP (curl), clean under `promtool check
// metrics`, with the histograms filled by a real park and wake; 404/405/400/431 for what is
// not a metrics scrape; the limits an HTTP peer cannot get past (concurrent connections,
// request size, time) — and parker serves on afterwards.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <regex>
#include <string>
#include <vector>

#include "parker/client_uv.hpp"
#include "support/client_daemon.hpp"
#include "support/client_recorder.hpp"
#include "support/client_uv_loop.hpp"
#include "support/process.hpp"
#include "support/receive_each.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

// The port parker logged for --metrics-listen 127.0.0.1:0.
int metrics_port(const ParkerDaemon& parker) {
  std::smatch m;
  std::string out = parker.output();
  REQUIRE(std::regex_search(out, m, std::regex("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics")));
  return std::stoi(m[1]);
}

UniqueFd connect_tcp(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Everything the server sends until it closes (bounded by `timeout`).
std::string read_until_closed(int fd, std::chrono::milliseconds timeout = 10s) {
  std::string all;
  auto end = receive_each(fd, timeout, [&](std::string_view chunk) {
    all += chunk;
    return true;
  });
  return end == ReceiveEnd::closed ? all : all + "<timeout>";
}

std::string curl(int port, const std::string& args) {
  return run_command("curl -sS --max-time 10 " + args + " http://127.0.0.1:" + std::to_string(port) + "/metrics 2>&1")
      .output;
}

}  // namespace

TEST_CASE("GET /metrics is the stats exposition, histograms included, and promtool finds nothing to fix",
          "[metrics]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"), {"--metrics-listen", "127.0.0.1:0"});
  parker.start();
  const int port = metrics_port(parker);

  // One park and one wake, so both histograms have an observation.
  {
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    REQUIRE(client->connect(parker.socket_path(), "metrics").ok());
    REQUIRE(loop.run_until([&] { return client->connected(); }));
    TcpLoopback tcp;
    TcpConnection connection = tcp.connect();
    REQUIRE(client->park(connection.server_side, 1, "blob").ok());
    REQUIRE(loop.run_until([&] { return !recorder.parked.empty(); }));
    write_text(connection.client_side.get(), "x");
    REQUIRE(loop.run_until([&] { return !recorder.woken.empty(); }));
    client->close();
  }

  CommandResult headers = run_command("curl -sS -i --max-time 10 http://127.0.0.1:" + std::to_string(port) + "/metrics");
  INFO(headers.output);
  REQUIRE(headers.code == 0);
  CHECK(headers.output.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(headers.output.find("Content-Type: text/plain; version=0.0.4; charset=utf-8") != std::string::npos);

  std::string body = curl(port, "");
  CHECK(body.find("parker_parks_total 1\n") != std::string::npos);
  CHECK(body.find("parker_time_parked_seconds_count 1\n") != std::string::npos);
  CHECK(body.find("parker_wake_delivery_seconds_count 1\n") != std::string::npos);
  CHECK(body.find("parker_wake_delivery_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
  // The same exposition as parkerctl stats (both are Daemon::stats_text()).
  CommandResult ctl = run_parkerctl("--socket " + parker.socket_path() + " stats");
  CHECK(ctl.output.find("# TYPE parker_wake_delivery_seconds histogram") != std::string::npos);

  CommandResult lint = run_command("curl -sS --max-time 10 http://127.0.0.1:" + std::to_string(port) +
                                   "/metrics | promtool check metrics 2>&1");
  INFO(lint.output);
  CHECK(lint.code == 0);
  CHECK(lint.output.empty());
  CHECK(parker.stop() == 0);
}

TEST_CASE("the metrics endpoint answers 404, 405 and 400 and bounds what an HTTP peer can take", "[metrics]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"), {"--metrics-listen", "127.0.0.1:0"});
  parker.start();
  const int port = metrics_port(parker);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  CHECK(run_command("curl -s -o /dev/null -w '%{http_code}' " + base + "/").output == "404");
  CHECK(run_command("curl -s -o /dev/null -w '%{http_code}' " + base + "/metricsx").output == "404");
  CHECK(run_command("curl -s -o /dev/null -w '%{http_code}' -X POST " + base + "/metrics").output == "405");
  CHECK(run_command("curl -s -o /dev/null -w '%{http_code}' '" + base + "/metrics?x=1'").output == "200");

  SECTION("garbage is a 400") {
    UniqueFd fd = connect_tcp(port);
    write_text(fd.get(), "NOT HTTP AT ALL\r\n\r\n");
    CHECK(read_until_closed(fd.get()).rfind("HTTP/1.1 400 ", 0) == 0);
  }
  SECTION("a request over 8 KiB is a 431, whatever it goes on sending") {
    UniqueFd fd = connect_tcp(port);
    std::string big = "GET /metrics HTTP/1.1\r\nX-Padding: " + std::string(9000, 'a') + "\r\n\r\n";
    (void)::send(fd.get(), big.data(), big.size(), MSG_NOSIGNAL);
    CHECK(read_until_closed(fd.get()).rfind("HTTP/1.1 431 ", 0) == 0);
  }
  SECTION("past 8 connections at once the newcomer is closed; idle ones time out; then it serves again") {
    std::vector<UniqueFd> idle;
    for (int i = 0; i < 8; ++i) idle.push_back(connect_tcp(port));
    UniqueFd extra = connect_tcp(port);
    CHECK(read_until_closed(extra.get(), 3s).empty());  // closed at once, no answer
    for (auto& fd : idle) CHECK(read_until_closed(fd.get(), 10s).empty());  // the 5 s timeout
    CHECK(run_command("curl -s -o /dev/null -w '%{http_code}' " + base + "/metrics").output == "200");
  }
  CHECK(parker.stop() == 0);
}

TEST_CASE("parker refuses a metrics address that is not ADDR:PORT", "[metrics]") {
  for (const char* bad : {"9187", "localhost:9187", "127.0.0.1:", "127.0.0.1:99999", ":80"}) {
    CommandResult r = run_command(program_path("parker") + " --metrics-listen '" + bad + "' 2>&1");
    INFO(bad << ": " << r.output);
    CHECK(r.code != 0);
    CHECK(r.output.find("--metrics-listen") != std::string::npos);
  }
}
