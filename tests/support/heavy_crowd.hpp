// Crowd: many raw RESP connections to one server, read together — one poll() over all of
// them, one deadline — so a test can drive thousands of clients without a thread each.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/heavy_parking_support.hpp"

namespace heavy::test {

// Many raw RESP connections, read together: one poll() over all of them, one deadline.
class Crowd {
 public:
  using Clock = std::chrono::steady_clock;

  void connect(std::uint16_t port, int n) {
    peers_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) peers_.push_back(Peer{connect_tcp(port), {}, {}, false});
  }
  void send(int i, const std::string& bytes) { send_all(peer(i).fd.get(), bytes); }
  void clear_replies() {
    for (Peer& p : peers_) p.replies.clear();
  }
  [[nodiscard]] const std::vector<std::string>& replies(int i) const { return peers_[static_cast<std::size_t>(i)].replies; }
  [[nodiscard]] bool ended(int i) const { return peers_[static_cast<std::size_t>(i)].ended; }
  void close_all() { peers_.clear(); }
  [[nodiscard]] int size() const noexcept { return static_cast<int>(peers_.size()); }

  // Reads until every connection has `count` whole replies (or its stream ended), or until
  // `deadline`; `between` runs after every round (to drain a server's log pipe).
  void read_replies(std::size_t count, Clock::time_point deadline, const std::function<void()>& between = {}) {
    std::vector<pollfd> fds;
    std::vector<std::size_t> owners;
    for (;;) {
      fds.clear();
      owners.clear();
      for (std::size_t i = 0; i < peers_.size(); ++i) {
        if (peers_[i].ended || peers_[i].replies.size() >= count) continue;
        fds.push_back({peers_[i].fd.get(), POLLIN, 0});
        owners.push_back(i);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (fds.empty() || left <= 0) return;
      const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left, 100)));
      if (ready < 0 && errno != EINTR) throw std::runtime_error("poll failed");
      for (std::size_t k = 0; ready > 0 && k < fds.size(); ++k) {
        if (fds[k].revents != 0) receive(peers_[owners[k]]);
      }
      if (between) between();
    }
  }

 private:
  struct Peer {
    UniqueFd fd;
    std::string buffer;
    std::vector<std::string> replies;
    bool ended;
  };
  Peer& peer(int i) { return peers_[static_cast<std::size_t>(i)]; }

  static void receive(Peer& p) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(p.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        p.buffer.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) p.ended = true;
      break;
    }
    for (std::size_t end = resp_value_end(p.buffer, 0); end != std::string::npos; end = resp_value_end(p.buffer, 0)) {
      p.replies.push_back(p.buffer.substr(0, end));
      p.buffer.erase(0, end);
    }
  }

  std::vector<Peer> peers_;
};

}  // namespace heavy::test
