// parker under a service manager, without one: the sd_notify datagrams it sends to a
// NOTIFY_SOCKET we bind (READY=1 after it listens, STATUS=, WATCHDOG=1, STOPPING=1), socket
// activation from a listening socket we pass as fd 3 (LISTEN_FDS, LISTEN_PID), and the
// journal's log format when JOURNAL_STREAM names its stderr. The same units against a real
// systemd: scripts/check-systemd-box.sh.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <vector>

#include "parker/unix_socket.hpp"
#include "parker/version.h"
#include "support/client_daemon.hpp"
#include "support/process.hpp"
#include "support/receive_each.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

// A datagram socket bound at `path`, as systemd's notify socket is.
UniqueFd bind_notify_socket(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof addr.sun_path);
  std::copy(path.begin(), path.end(), addr.sun_path);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Reads datagrams until one contains `needle` (true) or `timeout` passes; all are kept.
bool receive_until(int fd, const std::string& needle, std::vector<std::string>& seen,
                   std::chrono::milliseconds timeout = 10s) {
  return receive_each(fd, timeout, [&](std::string_view datagram) {
           seen.emplace_back(datagram);
           return seen.back().find(needle) == std::string::npos;
         }) == ReceiveEnd::stopped;
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST_CASE("parker tells NOTIFY_SOCKET READY=1 once it listens, STATUS and WATCHDOG while it runs, STOPPING=1 at TERM",
          "[systemd]") {
  TempDir dir;
  UniqueFd notify = bind_notify_socket(dir.file("notify"));
  const std::string sock = dir.file("parker.sock");
  Process parker({"/bin/sh", "-c",
                  "NOTIFY_SOCKET=" + quoted(dir.file("notify")) + " WATCHDOG_USEC=200000 WATCHDOG_PID=$$ exec " +
                      quoted(program_path("parker")) + " --socket " + quoted(sock)});
  std::vector<std::string> seen;
  REQUIRE(receive_until(notify.get(), "READY=1", seen));
  // READY came after the socket was listening: a connection succeeds now.
  CHECK(connect_unix(sock).ok());
  CHECK(seen.back().find("STATUS=0 parked; 0 parks, 0 wakes so far") != std::string::npos);
  // WatchdogSec of 0.2 s: WATCHDOG=1 every 0.1 s.
  REQUIRE(receive_until(notify.get(), "WATCHDOG=1", seen, 2s));
  REQUIRE(receive_until(notify.get(), "WATCHDOG=1", seen, 2s));
  parker.signal(SIGTERM);
  CHECK(receive_until(notify.get(), "STOPPING=1", seen));
  auto status = parker.wait(10s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
}

TEST_CASE("without NOTIFY_SOCKET parker sends nothing and runs as usual", "[systemd]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  ::unsetenv("NOTIFY_SOCKET");
  parker.start();
  CHECK(parker.stop() == 0);
}

TEST_CASE("socket activation: parker accepts on the listening socket passed as fd 3 and leaves its file", "[systemd]") {
  TempDir dir;
  const std::string path = dir.file("activated.sock");
  auto listening = listen_unix(path, ListenOptions{0600, 64, 0, false});
  REQUIRE(listening.ok());
  int fd = listening.value.get();
  REQUIRE(::fcntl(fd, F_SETFD, 0) == 0);  // inherited by the shell, which moves it to fd 3
  const std::string n = std::to_string(fd);
  const std::string to_fd3 = fd == 3 ? "" : " 3<&" + n + " " + n + "<&-";
  // $$ is the shell's pid, which exec gives to parker: LISTEN_PID names parker itself.
  Process parker({"/bin/sh", "-c",
                  "LISTEN_FDS=1 LISTEN_PID=$$ exec " + quoted(program_path("parker")) + " --socket " +
                      quoted(dir.file("unused.sock")) + to_fd3});
  listening.value.reset();  // parker has it now
  INFO(parker.output());
  REQUIRE(parker.wait_for_output("listening on " + path + " (socket from systemd)"));
  CommandResult stats = run_parkerctl("--socket " + path + " stats");
  CHECK(stats.code == 0);
  CHECK(stats.output.find("parker_sessions_total") != std::string::npos);
  struct stat st {};
  CHECK(::stat(dir.file("unused.sock").c_str(), &st) != 0);  // --socket was not created
  parker.signal(SIGTERM);
  REQUIRE(parker.wait(10s).has_value());
  CHECK(::stat(path.c_str(), &st) == 0);  // systemd's socket file is systemd's: still there
}

TEST_CASE("socket activation: LISTEN_FDS meant for another process is ignored, a non-listener is refused",
          "[systemd]") {
  TempDir dir;
  SECTION("another pid") {
    Process parker({"/bin/sh", "-c",
                    "LISTEN_FDS=1 LISTEN_PID=1 exec " + quoted(program_path("parker")) + " --socket " +
                        quoted(dir.file("own.sock"))});
    INFO(parker.output());
    CHECK(parker.wait_for_output("listening on " + dir.file("own.sock") + "\n"));
    parker.signal(SIGTERM);
    CHECK(parker.wait(10s).has_value());
  }
  SECTION("fd 3 is not a listening socket") {
    Process parker({"/bin/sh", "-c",
                    "LISTEN_FDS=1 LISTEN_PID=$$ exec " + quoted(program_path("parker")) + " --socket " +
                        quoted(dir.file("own.sock")) + " 3</dev/null"});
    auto status = parker.wait(10s);
    REQUIRE(status.has_value());
    parker.drain_output();
    INFO(parker.output());
    CHECK(exit_code(*status) == 1);
    CHECK(parker.output().find("not a listening Unix stream socket") != std::string::npos);
  }
}

TEST_CASE("when stderr is the journal, log lines carry a syslog priority and no timestamp", "[systemd][logging]") {
  TempDir dir;
  // JOURNAL_STREAM is "device:inode" of the stream systemd connected; here, the pipe.
  Process parker({"/bin/sh", "-c",
                  "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec " + quoted(program_path("parker")) +
                      " --socket " + quoted(dir.file("parker.sock"))});
  INFO(parker.output());
  REQUIRE(parker.wait_for_output("<6>info listening on " + dir.file("parker.sock") + "\n"));
  parker.signal(SIGTERM);
  REQUIRE(parker.wait(10s).has_value());
  parker.drain_output();
  CHECK(parker.output().find("<6>info shutting down") != std::string::npos);
  CHECK_FALSE(std::regex_search(parker.output(), std::regex("[0-9]{4}-[0-9]{2}-[0-9]{2}T")));  // no timestamps
}

TEST_CASE("every program logs in the same plain format elsewhere", "[logging]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  parker.start();
  // time, program, level, message
  const std::string pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12} parker info listening on ";
  CHECK(std::regex_search(parker.output(), std::regex(pattern, std::regex::multiline)));
  CommandResult ctl = run_parkerctl("--socket " + dir.file("nothing-here.sock") + " stats");
  CHECK(std::regex_search(ctl.output, std::regex("^[0-9]{4}-[0-9-]{5}T[0-9:.]{12} parkerctl error cannot connect")));
  CHECK(parker.stop() == 0);
}

TEST_CASE("every program answers --version", "[version]") {
  for (const char* program : {"parker", "parkerctl", "heavy_server", "demo_server", "demo_client", "parker_bench"}) {
    CommandResult r = run_command(program_path(program) + " --version");
    INFO(program << ": " << r.output);
    CHECK(r.code == 0);
    CHECK(r.output == std::string(program) + " " + PARKER_VERSION + "\n");
  }
}
