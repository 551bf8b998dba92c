// demo_client: connects to demo_server, asks for its stdout, and copies this program's stdin
// into the fd it receives until end of input. Lines typed here appear on the server's terminal.
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "demo_socket.hpp"
#include "parker/fd_passing.hpp"
#include "parker/unix_socket.hpp"
#include "parker/version.h"

namespace {

// Writes all of `data` to `fd`, resuming after short writes and signals. The fd shares its
// open file description (and so its O_NONBLOCK flag) with the server: wait if it is full.
parker::Error write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return parker::Error::from_errno();
      pollfd writable{fd, POLLOUT, 0};
      ::poll(&writable, 1, -1);
      continue;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return {};
}

// Copies `from` into `to` until end of input.
parker::Error copy_until_eof(int from, int to) {
  std::array<char, 4096> buffer;
  for (;;) {
    ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n == 0) return {};
    if (n < 0) {
      if (errno == EINTR) continue;
      return parker::Error::from_errno();
    }
    if (auto e = write_all(to, buffer.data(), static_cast<std::size_t>(n)); e.failed()) return e;
  }
}

// Why connecting failed, in words that say what to do about it.
std::string connect_failure(parker::Error error, const std::string& path) {
  if (error.is(ENOENT)) return fmt::format("no socket at {}: is demo_server running?", path);
  if (error.is(ECONNREFUSED)) {
    return fmt::format("nobody listens at {}: demo_server is not running (or this is not its "
                       "socket)", path);
  }
  return parker::describe(error);
}

// Asks the server for its stdout and returns the fd it passed (EPROTO if none came).
parker::Result<parker::UniqueFd> ask_for_stdout(int connection) {
  std::array request{demo::kAskForStdout};
  if (auto e = parker::send_all_with_fds(connection, request, {}); e.failed()) return {{}, e};
  std::array<std::byte, 16> reply{};
  std::vector<parker::UniqueFd> fds;
  auto got = parker::receive_with_fds(connection, reply, fds, 1);
  if (!got.ok()) return {{}, got.error};
  if (fds.size() != 1) return {{}, parker::Error{EPROTO}};
  return {std::move(fds.front()), {}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"demo_client: receives demo_server's stdout over a Unix socket and copies its own "
               "stdin into it until end of input (Ctrl-D)."};
  app.set_version_flag("--version", "demo_client " PARKER_VERSION, "Print the version and exit");
  std::string socket_path = demo::default_socket_path();
  app.add_option("-s,--socket", socket_path, "demo_server's socket ('@name': abstract namespace)")
      ->capture_default_str();
  app.footer(demo::kDefaultSocketRule);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("demo_client"));
  std::signal(SIGPIPE, SIG_IGN);  // a reader gone on the server side shows up as EPIPE instead

  auto connection = parker::connect_unix(socket_path);
  if (!connection.ok()) {
    spdlog::error("cannot connect: {}", connect_failure(connection.error, socket_path));
    return 1;
  }
  auto server_stdout = ask_for_stdout(connection.value.get());
  if (!server_stdout.ok()) {
    spdlog::error("demo_server did not pass its stdout: {}",
                  server_stdout.error.is(EPROTO) ? "it closed the connection (see its log)"
                                                 : parker::describe(server_stdout.error));
    return 1;
  }
  connection.value.reset();  // the fd is ours now; the socket has done its job
  spdlog::info("got demo_server's stdout as our fd {}; type lines, Ctrl-D ends",
               server_stdout.value.get());
  if (auto e = copy_until_eof(STDIN_FILENO, server_stdout.value.get()); e.failed()) {
    spdlog::error("copying stdin to demo_server's stdout: {}", parker::describe(e));
    return 1;
  }
  return 0;
}
