#include "write_through.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace parker::daemon {

WriteOutcome write_nonblocking(int fd, std::string_view bytes) noexcept {
  WriteOutcome out;
  while (out.sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + out.sent, bytes.size() - out.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      out.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // EAGAIN: the socket is full (the rest goes back to the owner). Anything else: the peer
    // is gone or the socket failed.
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) out.peer_gone = true;
    break;
  }
  return out;
}

}  // namespace parker::daemon
