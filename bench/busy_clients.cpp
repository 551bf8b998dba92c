#include "busy_clients.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace parker::bench {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kPing = "PING\r\n";
constexpr std::string_view kPong = "+PONG\r\n";

UniqueFd connect_loopback(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Sends all of `bytes` (PING is 6 bytes: a short write on a fresh socket does not happen, but
// EINTR may). False when the connection failed.
bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

BusyClients::BusyClients(std::uint16_t port, std::size_t count) {
  fds_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) fds_.push_back(connect_loopback(port));
  thread_ = std::thread([this] { run(); });
}

BusyClients::~BusyClients() { (void)stop(); }

BusyClients::Counts BusyClients::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  return counts_;
}

void BusyClients::run() noexcept {
  struct State {
    std::string got;
    Clock::time_point sent;
    bool dead = false;
  };
  std::vector<State> states(fds_.size());
  std::vector<pollfd> polls(fds_.size());
  for (std::size_t i = 0; i < fds_.size(); ++i) {
    polls[i] = {fds_[i].get(), POLLIN, 0};
    states[i].sent = Clock::now();
    if (!send_all(fds_[i].get(), kPing)) states[i].dead = true;
  }
  auto drop = [&](std::size_t i) {
    states[i].dead = true;
    polls[i].fd = -1;  // poll ignores it from now on
    ++counts_.dropped;
  };
  while (!stop_.load()) {
    if (reset_wait_.exchange(false)) counts_.longest_wait_ms = 0;
    const int ready = ::poll(polls.data(), polls.size(), 50);
    if (ready < 0 && errno != EINTR) return;
    const auto now = Clock::now();
    for (std::size_t i = 0; i < polls.size(); ++i) {
      State& s = states[i];
      if (s.dead) continue;
      if ((polls[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buf[256];
      const ssize_t n = ::recv(polls[i].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        drop(i);
        continue;
      }
      s.got.append(buf, static_cast<std::size_t>(n));
      while (s.got.size() >= kPong.size()) {
        if (s.got.compare(0, kPong.size(), kPong) != 0) {
          drop(i);
          break;
        }
        s.got.erase(0, kPong.size());
        ++counts_.replies;
        const double waited = std::chrono::duration<double, std::milli>(now - s.sent).count();
        if (waited > counts_.longest_wait_ms) counts_.longest_wait_ms = waited;
        s.sent = now;
        if (!send_all(polls[i].fd, kPing)) {
          drop(i);
          break;
        }
      }
    }
  }
}

}  // namespace parker::bench
