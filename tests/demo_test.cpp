// The demo pair end to end, as real processes: demo_server with a temporary socket and its
// stdout piped to this test, demo_client fed on its stdin. What the client reads must come
// out of the server's stdout, and nothing else may (the server logs to stderr).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;

namespace {

SpawnOptions server_options() {
  SpawnOptions options;
  options.pipe_stdout = true;
  options.merge_stderr = false;  // stdout must carry only what the clients send
  return options;
}

SpawnOptions client_options() {
  SpawnOptions options;
  options.pipe_stdin = true;
  return options;
}

// Starts demo_server on `path` and waits until it accepts connections.
void wait_until_listening(Process& server, const std::string& path) {
  REQUIRE(eventually([&] { return connect_unix(path).ok() || !server.running(); }));
  REQUIRE(server.running());
}

// Runs demo_client to the end with `input` on its stdin; returns its exit code. A thread
// feeds stdin while this one reads the server's output, so neither pipe can fill up and
// stall the other side.
int run_client(const std::string& path, const std::string& input, Process& server) {
  Process client({program_path("demo_client"), "--socket", path}, client_options());
  std::thread feeder([&] {
    client.write_stdin(input);
    client.close_stdin();
  });
  const std::string before = server.output();
  bool arrived = server.wait_for_output(before + input, 30s);
  feeder.join();
  client.drain_output();
  auto status = client.wait();
  INFO("demo_client said: " << client.output());
  REQUIRE(arrived);
  REQUIRE(status.has_value());
  return exit_code(*status);
}

}  // namespace

TEST_CASE("lines fed to demo_client appear on demo_server's stdout, client after client",
          "[demo]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("demo.sock");
    Process server({program_path("demo_server"), "--socket", path}, server_options());
    wait_until_listening(server, path);

    std::string everything;
    const std::string first = "hello from the first client\nsecond line\n";
    REQUIRE(run_client(path, first, server) == 0);
    everything += first;
    // After one client the server holds at most its idle fds plus that client's connection.
    const std::size_t server_fds = open_fd_count(server.pid());

    for (int i = 2; i <= 5; ++i) {  // it goes on serving
      const std::string lines = "client " + std::to_string(i) + " says hi\n";
      REQUIRE(run_client(path, lines, server) == 0);
      everything += lines;
    }
    REQUIRE(server.output() == everything);
    REQUIRE(server.running());
    // Nothing piles up per client: each passed fd is a duplicate the client owns.
    REQUIRE(eventually([&] { return open_fd_count(server.pid()) <= server_fds; }));
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("a large input goes through whole, whatever the pipe sizes", "[demo]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("demo.sock");
    Process server({program_path("demo_server"), "--socket", path}, server_options());
    wait_until_listening(server, path);
    std::string input;
    for (int i = 0; input.size() < (1 << 20); ++i) input += "line " + std::to_string(i) + "\n";
    REQUIRE(run_client(path, input, server) == 0);
    REQUIRE(server.output() == input);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("demo_client says clearly when no server is there", "[demo]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    SECTION("no socket at the path") {
      auto result = run_command(program_path("demo_client") + " --socket " + dir.file("none.sock") + " </dev/null");
      REQUIRE(result.code != 0);
      REQUIRE_THAT(result.output, Catch::Contains("is demo_server running?"));
    }
    SECTION("a socket file nobody listens on") {
      { REQUIRE(listen_unix(dir.file("stale.sock")).ok()); }
      auto result = run_command(program_path("demo_client") + " --socket " + dir.file("stale.sock") + " </dev/null");
      REQUIRE(result.code != 0);
      REQUIRE_THAT(result.output, Catch::Contains("demo_server is not running"));
    }
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("demo_server refuses a path that is taken and leaves it alone", "[demo]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    SECTION("a regular file") {
      const std::string path = dir.file("notes.txt");
      std::ofstream(path) << "keep me\n";
      auto result = run_command(program_path("demo_server") + " --socket " + path);
      REQUIRE(result.code != 0);
      REQUIRE_THAT(result.output, Catch::Contains("not a socket"));
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      REQUIRE(text.str() == "keep me\n");
    }
    SECTION("another demo_server's socket") {
      const std::string path = dir.file("demo.sock");
      Process first({program_path("demo_server"), "--socket", path}, server_options());
      wait_until_listening(first, path);
      auto result = run_command(program_path("demo_server") + " --socket " + path);
      REQUIRE(result.code != 0);
      REQUIRE_THAT(result.output, Catch::Contains("EADDRINUSE"));
      REQUIRE(first.running());
    }
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("demo_server and demo_client explain themselves with --help", "[demo]") {
  for (const char* program : {"demo_server", "demo_client"}) {
    INFO(program);
    auto result = run_command(program_path(program) + " --help");
    REQUIRE(result.code == 0);
    REQUIRE_THAT(result.output, Catch::Contains("--socket") && Catch::Contains("Default socket"));
  }
}
