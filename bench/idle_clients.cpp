#include "idle_clients.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <sys/socket.h>
#include <stdexcept>

#include <fmt/format.h>

#include "loopback.hpp"
#include "progress.hpp"

namespace parker::bench {
namespace {

// Source addresses are never reused within a run, so holders of different groups that
// connect to the same listener cannot compete for ports.
std::atomic<std::size_t> next_source_index{0};

void write_line(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// Connections per source address. The kernel looks for a free ephemeral port by scanning,
// and the scan gets slow as the range fills: 19k connections from one address took 19 s,
// from five addresses half a second.
constexpr std::size_t kPerSource = 4000;

constexpr std::chrono::seconds kPingTimeout{60};

// Sends PING on every socket, then reads until each has answered +PONG or `timeout` passed;
// returns how many did. The sockets are blocking: one small send each never blocks.
std::size_t ping_each(std::vector<UniqueFd>& sockets, std::chrono::seconds timeout) {
  static constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";
  static constexpr std::string_view kPong = "+PONG\r\n";
  std::vector<pollfd> waiting;     // the sockets not answered yet
  std::vector<std::size_t> index;  // ... and which of `sockets` each is
  std::vector<std::string> got(sockets.size());
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    if (::send(sockets[i].get(), kPing.data(), kPing.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(kPing.size())) {
      waiting.push_back({sockets[i].get(), POLLIN, static_cast<short>(0)});
      index.push_back(i);
    }
  }
  std::size_t answered = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!waiting.empty() && std::chrono::steady_clock::now() < deadline) {
    int rc = ::poll(waiting.data(), waiting.size(), 200);
    if (rc < 0 && errno != EINTR) break;
    for (std::size_t k = 0; k < waiting.size();) {
      if (waiting[k].revents == 0) {
        ++k;
        continue;
      }
      char buf[64];
      ssize_t n = ::recv(waiting[k].fd, buf, sizeof buf, MSG_DONTWAIT);
      std::string& g = got[index[k]];
      if (n > 0) g.append(buf, static_cast<std::size_t>(n));
      const bool done = g.size() >= kPong.size() || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
      if (done) {
        answered += g.starts_with(kPong) ? 1 : 0;
        waiting[k] = waiting.back();
        index[k] = index.back();
        waiting.pop_back();
        index.pop_back();
      } else {
        waiting[k].revents = 0;
        ++k;
      }
    }
  }
  return answered;
}

// The holder's whole life: connect, report, wait until told to go, exit (closing them all).
int hold_connections(const std::string& ip, std::uint16_t port, std::size_t count,
                     const std::vector<std::string>& sources, int status_fd, int control_fd) {
  std::vector<UniqueFd> sockets;
  sockets.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    int error = 0;
    const std::string& source = sources[i / kPerSource];
    UniqueFd fd = try_connect_tcp(ip, port, source, error);
    if (!fd) {
      write_line(status_fd, fmt::format("E {} connect from {}: {}\n", i, source, std::strerror(error)));
      break;
    }
    sockets.push_back(std::move(fd));
    if ((i + 1) % 500 == 0) write_line(status_fd, fmt::format("P {}\n", i + 1));
  }
  if (sockets.size() == count) write_line(status_fd, fmt::format("D {}\n", count));
  for (;;) {
    char command = 0;
    ssize_t n = ::read(control_fd, &command, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  // EOF: exit, closing them all
    if (command == 'p') write_line(status_fd, fmt::format("K {}\n", ping_each(sockets, kPingTimeout)));
  }
}

}  // namespace

void IdleClients::open(const std::string& ip, std::uint16_t port, std::size_t count,
                       std::chrono::milliseconds timeout, Progress* progress) {
  std::size_t first_new = holders_.size();
  for (std::size_t left = count; left > 0;) {
    std::size_t share = std::min(left, kPerHolder);
    left -= share;
    int status[2], control[2];
    if (::pipe2(status, O_CLOEXEC) != 0 || ::pipe2(control, O_CLOEXEC) != 0) {
      throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    }
    UniqueFd status_read(status[0]), status_write(status[1]);
    UniqueFd control_read(control[0]), control_write(control[1]);
    std::vector<std::string> sources;
    for (std::size_t k = 0; k * kPerSource < share; ++k) sources.push_back(loopback_source(next_source_index++));
    int sw = status_write.get(), cr = control_read.get();
    ChildProcess child = ChildProcess::fork_function(
        [&] { return hold_connections(ip, port, share, sources, sw, cr); }, {sw, cr});
    holders_.push_back(Holder{std::move(child), std::move(status_read), std::move(control_write)});
  }

  // Collect every new holder's result: progress lines until "D" (done) or "E" (error).
  std::size_t base = count_;
  std::vector<std::size_t> done(holders_.size() - first_new, 0);
  std::vector<bool> finished(done.size(), false);
  std::vector<std::string> partial(done.size());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t open_holders = done.size();
  while (open_holders > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      close_all();
      throw std::runtime_error(fmt::format("opening {} idle connections to {}:{} took longer than {} s",
                                           count, ip, port, timeout.count() / 1000));
    }
    std::vector<pollfd> polls;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < done.size(); ++i) {
      if (finished[i]) continue;
      polls.push_back({holders_[first_new + i].status.get(), POLLIN, 0});
      which.push_back(i);
    }
    int rc = ::poll(polls.data(), polls.size(), static_cast<int>(std::min<long long>(left.count(), 200)));
    if (rc < 0 && errno != EINTR) throw std::runtime_error("poll failed");
    for (std::size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      std::size_t i = which[k];
      char buf[512];
      ssize_t n = ::read(polls[k].fd, buf, sizeof buf);
      if (n <= 0) {
        close_all();
        throw std::runtime_error("an idle-connection holder died before reporting");
      }
      partial[i].append(buf, static_cast<std::size_t>(n));
      std::size_t eol;
      while ((eol = partial[i].find('\n')) != std::string::npos) {
        std::string line = partial[i].substr(0, eol);
        partial[i].erase(0, eol + 1);
        if (line.size() < 2) continue;
        if (line[0] == 'E') {
          close_all();
          throw std::runtime_error("idle connections: " + line.substr(2));
        }
        done[i] = std::stoull(line.substr(2));
        if (line[0] == 'D') {
          finished[i] = true;
          --open_holders;
        }
      }
    }
    if (progress != nullptr) {
      std::size_t total = 0;
      for (auto d : done) total += d;
      progress->set(base + total);
    }
  }
  count_ += count;
}

std::vector<pid_t> IdleClients::pids() const {
  std::vector<pid_t> out;
  for (const auto& h : holders_) out.push_back(h.process.pid());
  return out;
}

std::size_t IdleClients::ping_all(std::chrono::milliseconds timeout) {
  for (auto& h : holders_) write_line(h.control.get(), "p");
  std::size_t answered = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto& h : holders_) {
    std::string line;
    while (line.empty() || line.back() != '\n') {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{h.status.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        throw std::runtime_error("idle connections: no PING report in time");
      }
      char c = 0;
      ssize_t n = ::read(h.status.get(), &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error("an idle-connection holder died before its PING report");
      line += c;
      if (c == '\n' && !line.starts_with("K ")) line.clear();  // a late progress line
    }
    answered += std::stoull(line.substr(2));
  }
  return answered;
}

void IdleClients::close_all() {
  for (auto& h : holders_) h.control.reset();  // EOF: each holder exits, closing its sockets
  for (auto& h : holders_) {
    if (!h.process.wait(10s)) h.process.stop(1s);
  }
  holders_.clear();
  count_ = 0;
}

}  // namespace parker::bench
