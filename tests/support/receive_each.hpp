// Reading a socket in tests with a bound on time: each recv() chunk (or datagram) goes to a
// callback until it says stop, the peer closes, or the time is up.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <string_view>

namespace parker::test {

enum class ReceiveEnd { stopped, closed, timed_out };

// `on_chunk` returns false to stop. A recv() of 0 (end of stream) or an error ends as closed.
inline ReceiveEnd receive_each(int fd, std::chrono::milliseconds timeout,
                               const std::function<bool(std::string_view)>& on_chunk) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return ReceiveEnd::closed;
    if (!on_chunk(std::string_view(buffer, static_cast<std::size_t>(n)))) return ReceiveEnd::stopped;
  }
  return ReceiveEnd::timed_out;
}

}  // namespace parker::test
