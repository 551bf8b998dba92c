// parkerctl against the real parker: stats and list, and clear errors with exit code 2 when
// parker cannot be reached (not running, stale socket, permission denied).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "parker/client.hpp"
#include "parker/unix_socket.hpp"
#include "support/client_daemon.hpp"
#include "support/client_fake_parker.hpp"
#include "support/client_recorder.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {
bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }
}  // namespace

TEST_CASE("parkerctl stats prints parker's metrics in Prometheus text", "[parkerctl]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  parker.start();
  const std::size_t parker_baseline = parker.fd_count();
  auto result = run_parkerctl("--socket " + parker.socket_path() + " stats");
  INFO(result.output);
  CHECK(result.code == 0);
  for (const char* metric :
       {"# TYPE parker_parked_connections gauge", "parker_parked_connections 0", "parker_parks_total",
        "parker_wakes_total{reason=\"readable\"}", "parker_closed_total{reason=\"hangup\"}",
        "parker_rejected_total{reason=\"quota_owner\"}", "parker_owner_sessions", "parker_blob_bytes"}) {
    CHECK(contains(result.output, metric));
  }
  // The observer session is gone once parkerctl exits: parker holds no fd for it.
  CHECK(parker.settle_fd_count(parker_baseline) == parker_baseline);
  CHECK(parker.stop() == 0);
}

TEST_CASE("parkerctl stats and list see a parked connection and its pool", "[parkerctl]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  parker.start();
  ClientRecorder recorder;
  Client client(recorder.callbacks());
  REQUIRE(client.connect(parker.socket_path(), "ctl-pool").ok());
  REQUIRE(run_until(client, nullptr, [&] { return client.connected(); }));
  TcpLoopback tcp;
  TcpConnection connection = tcp.connect();
  REQUIRE(client.park(connection.server_side, 1, "twelve bytes").ok());
  client.flush();
  REQUIRE(eventually([&] {
    return contains(run_parkerctl("--socket " + parker.socket_path() + " stats").output, "parker_parked_connections 1");
  }));
  auto stats = run_parkerctl("--socket " + parker.socket_path() + " stats");
  CHECK(contains(stats.output, "parker_parks_total 1"));
  CHECK(contains(stats.output, "parker_owner_sessions 1"));
  CHECK(contains(stats.output, "parker_blob_bytes 12"));
  auto list = run_parkerctl("--socket " + parker.socket_path() + " list");
  INFO(list.output);
  CHECK(list.code == 0);
  CHECK(contains(list.output, "ctl-pool"));
  client.close();
  CHECK(parker.stop() == 0);
}

TEST_CASE("parkerctl honours PARKER_SOCKET", "[parkerctl]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  parker.start();
  auto result = run_command("PARKER_SOCKET=" + parker.socket_path() + " " + program_path("parkerctl") + " stats 2>&1");
  INFO(result.output);
  CHECK(result.code == 0);
  CHECK(contains(result.output, "parker_parked_connections"));
  CHECK(parker.stop() == 0);
}

TEST_CASE("parkerctl says clearly when parker is not running", "[parkerctl]") {
  TempDir dir;
  SECTION("no socket file") {
    auto result = run_parkerctl("--socket " + dir.file("parker.sock") + " stats");
    INFO(result.output);
    CHECK(result.code == 2);
    CHECK(contains(result.output, dir.file("parker.sock")));
    CHECK(contains(result.output, "is parker running?"));
  }
  SECTION("a stale socket file nobody listens on") {
    { auto listener = listen_unix(dir.file("parker.sock")); REQUIRE(listener.ok()); }
    auto result = run_parkerctl("--socket " + dir.file("parker.sock") + " list");
    INFO(result.output);
    CHECK(result.code == 2);
    CHECK(contains(result.output, "parker is not running"));
  }
}

TEST_CASE("parkerctl says clearly when the socket is not ours to open", "[parkerctl]") {
  if (::geteuid() != 0) return;  // needs to run it as another user
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  parker.start();
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);  // the directory open, the socket 0600
  auto result = run_command("/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " +
                            program_path("parkerctl") + " --socket " + parker.socket_path() + " stats 2>&1");
  INFO(result.output);
  CHECK(result.code == 2);
  CHECK(contains(result.output, "permission denied"));
  CHECK(parker.stop() == 0);
}

TEST_CASE("parkerctl reports a refusal from parker with exit code 3", "[parkerctl]") {
  // A fake parker that answers HELLO with a fatal ERROR, as a real one does for a refused uid.
  TempDir dir;
  FakeParker fake(dir.file("parker.sock"));
  Process ctl({program_path("parkerctl"), "--socket", fake.path(), "stats"});
  REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
  CHECK(fake.take<protocol::Hello>().at(0).first.pool.empty());  // an observer
  fake.send(protocol::ErrorMessage{protocol::ErrorCode::not_allowed, true, 0, "uid 1000 is not allowed"});
  fake.close_connection();
  auto status = ctl.wait(10s);
  REQUIRE(status.has_value());
  ctl.drain_output(1s);
  INFO(ctl.output());
  CHECK(exit_code(*status) == 3);
  CHECK(contains(ctl.output(), "uid 1000 is not allowed"));
}

TEST_CASE("parkerctl gives up after its timeout when parker never answers", "[parkerctl]") {
  TempDir dir;
  FakeParker fake(dir.file("parker.sock"));  // accepts, never welcomes
  Process ctl({program_path("parkerctl"), "--socket", fake.path(), "--timeout", "0.2", "stats"});
  REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
  auto status = ctl.wait(10s);
  REQUIRE(status.has_value());
  ctl.drain_output(1s);
  CHECK(exit_code(*status) == 3);
  CHECK(contains(ctl.output(), "timed out"));
}

TEST_CASE("parkerctl --help and bad usage", "[parkerctl]") {
  auto help = run_parkerctl("--help");
  CHECK(help.code == 0);
  CHECK(contains(help.output, "stats"));
  CHECK(contains(help.output, "list"));
  CHECK(contains(help.output, "--socket"));
  auto none = run_parkerctl("");
  CHECK(none.code == 1);
  CHECK(contains(none.output, "subcommand"));
  auto unknown = run_parkerctl("frobnicate");
  CHECK(unknown.code == 1);
}
