// Creating, binding and connecting Unix domain sockets safely.
//
// Paths: a normal filesystem path, or on Linux "@name" for the abstract namespace (no
// file, no permissions: rely on peer_credentials() there). All sockets made here are
// close-on-exec.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker {

struct ListenOptions {
  mode_t mode = 0600;            // permissions of the socket file (not umask-dependent)
  int backlog = 1024;
  int type = 0;                  // 0 means SOCK_STREAM
  bool nonblocking = true;
};

// Listens on `path`. A socket file left by a dead server is replaced; a path that is not
// a socket is refused (kErrNotASocketPath) and one where a process still accepts is
// refused with EADDRINUSE. The socket file is never, even briefly, more permissive than
// `options.mode`.
[[nodiscard]] Result<UniqueFd> listen_unix(std::string_view path, const ListenOptions& options = {});

// Connects to `path` (ENOENT: nothing there; ECONNREFUSED: nobody listening).
[[nodiscard]] Result<UniqueFd> connect_unix(std::string_view path, int type = 0,
                                            bool nonblocking = false);

// accept4() with close-on-exec (and non-blocking if asked); EINTR retried.
[[nodiscard]] Result<UniqueFd> accept_connection(int listener, bool nonblocking = true);

// A connected pair (socketpair), close-on-exec.
[[nodiscard]] Result<std::pair<UniqueFd, UniqueFd>> make_socket_pair(int type = 0,
                                                                     bool nonblocking = false);

[[nodiscard]] Error set_nonblocking(int fd, bool on = true);

// The socket type (SOCK_STREAM...) of an fd, or ENOTSOCK if it is not a socket.
[[nodiscard]] Result<int> socket_type(int fd);

}  // namespace parker
