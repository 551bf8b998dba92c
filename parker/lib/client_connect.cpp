#include "client_connect.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "parker/unix_socket.hpp"

namespace parker::detail {

Error check_socket_path(std::string_view path) {
  if (path.empty()) return Error{EINVAL};
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) return Error{ENAMETOOLONG};
  return {};
}

Result<UniqueFd> connect_nonblocking(std::string_view path) {
  if (Error e = check_socket_path(path); e.failed()) return {{}, e};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  bool abstract = path.front() == '@';
  if (abstract) addr.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return {{}, Error::from_errno()};
#else
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  if (!fd) return {{}, Error::from_errno()};
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  if (Error e = set_nonblocking(fd.get()); e.failed()) return {{}, e};
#endif
#if defined(SO_NOSIGPIPE)
  int one = 1;  // macOS has no MSG_NOSIGNAL: a write to a dead parker must not kill us
  ::setsockopt(fd.get(), SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    // A Unix socket connects at once or not at all; EINPROGRESS/EINTR would leave a connect
    // running in the background, which we treat as a failed attempt, retried later.
    return {{}, Error::from_errno()};
  }
  return {std::move(fd), {}};
}

}  // namespace parker::detail
