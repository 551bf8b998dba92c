// Where parker listens when no --socket is given, and where clients look for it: one rule,
// shared by the daemon, parkerctl and the client library so they always agree.
#pragma once

#include <string>

namespace parker {

// The default control socket path, first match wins:
//   1. $PARKER_SOCKET, when set and not empty;
//   2. /run/parker/parker.sock, when running as root (effective uid 0);
//   3. $XDG_RUNTIME_DIR/parker.sock, when XDG_RUNTIME_DIR is set and not empty;
//   4. /tmp/parker-<effective uid>.sock.
[[nodiscard]] std::string default_socket_path();

}  // namespace parker
