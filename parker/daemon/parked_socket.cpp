#include "parked_socket.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace parker::daemon {
namespace {

bool is_listening(int fd) noexcept {
  int on = 0;
  socklen_t len = sizeof on;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on != 0;
}

}  // namespace

void ParkedSocket::set_blob(std::string_view bytes) { blob = make_blob(bytes); }

std::uint32_t ParkedSocket::blob_size() const noexcept { return daemon::blob_size(blob.get()); }

std::string_view ParkedSocket::blob_view() const noexcept { return blob_bytes(blob.get()); }

SocketEvent probe_socket(int fd) noexcept {
  char byte = 0;
  ssize_t n;
  do {
    n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n > 0) return SocketEvent::readable;
  if (n == 0) return SocketEvent::hangup;
  switch (errno) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return SocketEvent::spurious;
    case ENOTCONN:
    case EINVAL:
      // A listening socket cannot be peeked at: readiness means a pending connection. Checked
      // here, on the rare event, rather than with one more syscall on every park.
      return is_listening(fd) ? SocketEvent::readable : SocketEvent::hangup;
    case ENOTSOCK:
      // Parked as checked (1.4) but not a socket: the owner was wrong. Hand it back rather
      // than close what is the owner's.
      return SocketEvent::readable;
    default:
      return SocketEvent::error;
  }
}

}  // namespace parker::daemon
