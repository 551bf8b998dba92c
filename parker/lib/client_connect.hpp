// The client's connect(): non-blocking from the first syscall, so an event loop never waits
// on parker (a stuck parker with a full listen backlog answers EAGAIN instead of hanging us).
#pragma once

#include <string_view>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker::detail {

// A connected, non-blocking, close-on-exec stream socket to `path` ("@name": Linux abstract).
// Errors: ENOENT (no socket file), ECONNREFUSED (nobody listening), EACCES, EAGAIN (backlog
// full), ENAMETOOLONG...
[[nodiscard]] Result<UniqueFd> connect_nonblocking(std::string_view path);

// Whether `path` fits a socket address at all.
[[nodiscard]] Error check_socket_path(std::string_view path);

}  // namespace parker::detail
