#include "loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace parker::bench {
namespace {

sockaddr_in address(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    throw std::invalid_argument("not an IPv4 address: " + ip);
  }
  return a;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_io(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

UniqueFd listen_tcp(const std::string& ip, std::uint16_t port, int backlog, bool nonblocking) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = address(ip, port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    throw std::runtime_error(fmt::format("bind {}:{}: {}", ip, port, std::strerror(errno)));
  }
  if (::listen(fd.get(), backlog) != 0) {
    throw std::runtime_error(fmt::format("listen: {}", std::strerror(errno)));
  }
  return fd;
}

std::uint16_t local_port(int socket) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(socket, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

std::uint16_t pick_free_port() {
  UniqueFd fd = listen_tcp("127.0.0.1", 0, 1);
  return local_port(fd.get());
}

UniqueFd try_connect_tcp(const std::string& ip, std::uint16_t port, const std::string& source_ip,
                         int& error) {
  error = 0;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    error = errno;
    return fd;
  }
  if (!source_ip.empty()) {
    // Defer the port choice to connect(): then the port only has to be unique per
    // destination, not per source address alone.
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src = address(source_ip, 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      error = errno;
      return UniqueFd();
    }
  }
  sockaddr_in dst = address(ip, port);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    error = errno;
    return UniqueFd();
  }
  return fd;
}

UniqueFd connect_tcp(const std::string& ip, std::uint16_t port, const std::string& source_ip,
                     bool nodelay) {
  int error = 0;
  UniqueFd fd = try_connect_tcp(ip, port, source_ip, error);
  if (!fd) {
    throw std::runtime_error(fmt::format("connect to {}:{}{}: {}", ip, port,
                                         source_ip.empty() ? "" : " from " + source_ip,
                                         std::strerror(error)));
  }
  if (nodelay) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

std::string loopback_source(std::size_t index) {
  // 127.0.0.1 is left to ordinary traffic; .0 and .255 are avoided in every octet.
  std::size_t third = index / 250;
  std::size_t fourth = 2 + index % 250;
  return fmt::format("127.0.{}.{}", third % 250, fourth);
}

bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int error = 0;
    UniqueFd fd = try_connect_tcp("127.0.0.1", port, {}, error);
    if (fd) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// poll() first, then read()/write(): works on sockets and pipes alike, blocking or not.
bool write_all(int fd, const void* data, std::size_t size, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    if (!wait_io(fd, POLLOUT, deadline)) return false;
    ssize_t n = ::write(fd, p, size);
    if (n > 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return false;
    }
  }
  return true;
}

bool read_exact(int fd, void* data, std::size_t size, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto p = static_cast<char*>(data);
  while (size > 0) {
    if (!wait_io(fd, POLLIN, deadline)) return false;
    ssize_t n = ::read(fd, p, size);
    if (n > 0) {
      p += n;
      size -= static_cast<std::size_t>(n);
    } else if (n == 0) {
      return false;
    } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
      return false;
    }
  }
  return true;
}

}  // namespace parker::bench
