// What parker speaks of systemd's service protocol, written from its documentation
// (sd_notify(3), sd_listen_fds(3)) rather than linked from libsystemd: one datagram and three
// environment variables do not earn a dependency.
//
//   notify("READY=1")       a datagram to $NOTIFY_SOCKET; nothing at all without it
//   watchdog_interval()     $WATCHDOG_USEC when $WATCHDOG_PID is unset or ours
//   listen_fds()            the sockets of socket activation, from fd 3 ($LISTEN_FDS, $LISTEN_PID)
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker::daemon::systemd {

// Sends `state` ("READY=1", "STATUS=...\nWATCHDOG=1"...) to the service manager. Without
// $NOTIFY_SOCKET: does nothing and succeeds. Supports path and abstract ("@...") sockets.
[[nodiscard]] Error notify(std::string_view state);

// How often the manager wants WATCHDOG=1 (WatchdogSec=), or zero when it does not.
[[nodiscard]] std::chrono::microseconds watchdog_interval();

// The sockets passed for this process (fds 3, 4, ... as $LISTEN_FDS says, when $LISTEN_PID
// is our pid), each made close-on-exec and owned by the result. The variables are removed so
// that nothing started later takes them as its own. Empty when none were passed.
struct ListenFds {
  std::vector<UniqueFd> fds;
  std::vector<std::string> names;  // $LISTEN_FDNAMES, when given
  std::string problem;             // set when the variables were there but wrong
};
[[nodiscard]] ListenFds listen_fds();

}  // namespace parker::daemon::systemd
