// demo_server: listens on a Unix socket and passes its own stdout to every client that asks.
// Whatever a client then writes into that fd appears here. Our own messages go to stderr, so
// stdout carries nothing but what the clients type.
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <span>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "demo_socket.hpp"
#include "parker/fd_passing.hpp"
#include "parker/peer_credentials.hpp"
#include "parker/unix_socket.hpp"
#include "parker/version.h"

namespace {

// Serves one connected client: checks who it is, waits for its request, passes stdout.
void serve(int connection) {
  auto peer = parker::peer_credentials(connection);
  if (!peer.ok()) {
    spdlog::warn("peer credentials: {}", parker::describe(peer.error));
    return;
  }
  // Only our own user gets our terminal (the 0600 socket says the same, except to root).
  if (peer.value.uid != ::getuid()) {
    spdlog::warn("refusing pid {}: uid {} is not ours", peer.value.pid, peer.value.uid);
    return;
  }
  // A client that connects and never asks must not hold up the next one.
  timeval patience{5, 0};
  ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);

  std::array<std::byte, 1> request{};
  std::vector<parker::UniqueFd> unexpected_fds;  // max_fds 0: any fd sent to us is closed
  auto got = parker::receive_with_fds(connection, request, unexpected_fds, 0);
  if (got.ok() && got.value == 0) {  // e.g. another demo_server checking we are alive
    spdlog::info("pid {} hung up without asking", peer.value.pid);
    return;
  }
  if (!got.ok() || request[0] != demo::kAskForStdout) {
    spdlog::warn("pid {} did not ask for stdout: {}", peer.value.pid,
                 got.ok() ? "unknown request" : parker::describe(got.error));
    return;
  }
  // fds ride on data: the one reply byte carries a duplicate of our fd 1. We keep ours.
  const int stdout_fd = STDOUT_FILENO;
  auto sent = parker::send_all_with_fds(connection, request, std::span(&stdout_fd, 1));
  if (sent.failed()) {
    spdlog::warn("passing stdout to pid {}: {}", peer.value.pid, parker::describe(sent));
    return;
  }
  spdlog::info("passed stdout to pid {}; what it types appears below", peer.value.pid);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"demo_server: passes its stdout to each demo_client that connects, so what the "
               "client reads from its stdin appears on this terminal."};
  app.set_version_flag("--version", "demo_server " PARKER_VERSION, "Print the version and exit");
  std::string socket_path = demo::default_socket_path();
  app.add_option("-s,--socket", socket_path,
                 "Unix socket to listen on ('@name': Linux abstract namespace)")
      ->capture_default_str();
  app.footer(demo::kDefaultSocketRule);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("demo_server"));

  parker::ListenOptions options;
  options.nonblocking = false;  // one client at a time, blocking: plenty for a demo
  auto listener = parker::listen_unix(socket_path, options);
  if (!listener.ok()) {
    spdlog::error("cannot listen on {}: {}{}", socket_path, parker::describe(listener.error),
                  listener.error.is(EADDRINUSE) ? " (is another demo_server running there?)" : "");
    return 1;
  }
  spdlog::info("listening on {}; now run: demo_client --socket {}", socket_path, socket_path);
  for (;;) {
    auto connection = parker::accept_connection(listener.value.get(), false);
    if (!connection.ok()) {
      spdlog::error("accept: {}", parker::describe(connection.error));
      return 1;
    }
    serve(connection.value.get());  // the connection closes here; the client keeps the fd
  }
}
