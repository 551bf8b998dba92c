#include "minimal_cycle.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "parker/fd_passing.hpp"

namespace parker::bench {
namespace {

constexpr char kPark = 'p';        // owner -> watcher, with the fds to park
constexpr char kRecallLast = 'l';  // owner -> watcher: the last one parked back
constexpr char kRecallRest = 'r';  // owner -> watcher: every other one back
constexpr char kWoken = 'w';       // watcher -> owner, with woken fds

Error send_command(int socket, char command, std::span<const int> fds) {
  const std::byte byte{static_cast<unsigned char>(command)};
  return send_all_with_fds(socket, std::span(&byte, 1), fds);
}

// Takes parked[from, to) out of the epoll set and sends them back, 253 a message; our
// copies close once sent.
bool give_back(int socket, int ep, std::vector<UniqueFd>& parked, std::size_t from, std::size_t to) {
  std::vector<int> raw;
  for (std::size_t at = from; at < to;) {
    const std::size_t end = std::min(to, at + kMaxFdsPerMessage);
    raw.clear();
    for (std::size_t i = at; i < end; ++i) {
      if (::epoll_ctl(ep, EPOLL_CTL_DEL, parked[i].get(), nullptr) != 0) return false;
      raw.push_back(parked[i].get());
    }
    if (send_command(socket, kWoken, raw).failed()) return false;
    for (std::size_t i = at; i < end; ++i) parked[i].reset();
    at = end;
  }
  parked.erase(parked.begin() + static_cast<std::ptrdiff_t>(from), parked.begin() + static_cast<std::ptrdiff_t>(to));
  return true;
}

// The watcher: parks what arrives (epoll_ctl ADD), gives back what is asked for. Ends when
// the owner goes away (or the harness: PR_SET_PDEATHSIG).
int watcher_main(int socket) {
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) return 1;
  std::vector<UniqueFd> parked;
  std::vector<UniqueFd> arrived;
  for (;;) {
    std::byte command[1];
    arrived.clear();
    auto got = receive_with_fds(socket, command, arrived);
    if (!got.ok()) return 2;
    if (got.value == 0) return 0;
    switch (static_cast<char>(command[0])) {
      case kPark:
        for (UniqueFd& fd : arrived) {
          epoll_event ev{EPOLLIN | EPOLLRDHUP, {.fd = fd.get()}};
          if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) return 3;
          parked.push_back(std::move(fd));
        }
        break;
      case kRecallLast:
        if (!parked.empty() && !give_back(socket, ep.get(), parked, parked.size() - 1, parked.size())) return 4;
        break;
      case kRecallRest:
        if (!give_back(socket, ep.get(), parked, 0, parked.size())) return 4;
        break;
      default: return 5;
    }
  }
}

// Receives `count` woken fds into `back`; false (and the error set) if the watcher fails.
bool receive_woken(int socket, std::size_t count, std::vector<UniqueFd>& back, OwnerControl* control) {
  const std::size_t want = back.size() + count;
  while (back.size() < want) {
    std::byte byte[1];
    auto got = receive_with_fds(socket, byte, back);
    if (!got.ok() || got.value == 0 || static_cast<char>(byte[0]) != kWoken) {
      set_error(control, got.ok() ? "the minimal watcher went away" : "recvmsg from the minimal watcher: " + describe(got.error));
      return false;
    }
  }
  return true;
}

}  // namespace

MinimalWatcher::MinimalWatcher() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  socket_ = UniqueFd(pair[0]);
  UniqueFd theirs(pair[1]);
  const int child_end = theirs.get();
  watcher_ = ChildProcess::fork_function([child_end] { return watcher_main(child_end); }, {child_end});
}

void minimal_cycle(int socket, std::vector<UniqueFd>& held, std::size_t batch, OwnerControl* control) {
  const std::size_t m = held.size();
  std::vector<UniqueFd> back;
  back.reserve(m);
  std::vector<int> raw;
  const pid_t watcher = control->parker_pid.load();
  const CpuMark c0 = cpu_mark(watcher);
  const double t0 = now_seconds();
  for (std::size_t at = 0; at < m;) {
    const std::size_t end = std::min(m, at + std::max<std::size_t>(1, std::min(batch, kMaxFdsPerMessage)));
    raw.clear();
    for (std::size_t i = at; i < end; ++i) raw.push_back(held[i].get());
    if (Error e = send_command(socket, kPark, raw); e.failed()) {
      set_error(control, "sendmsg to the minimal watcher: " + describe(e));
      return;  // `held` still has every connection
    }
    for (std::size_t i = at; i < end; ++i) held[i].reset();  // the watcher has its own
    at = end;
  }
  if (m == 0) return;
  if (send_command(socket, kRecallLast, {}).failed() || !receive_woken(socket, 1, back, control)) return;
  const CpuMark c1 = cpu_mark(watcher);
  const double t1 = now_seconds();
  if (send_command(socket, kRecallRest, {}).failed() || !receive_woken(socket, m - 1, back, control)) return;
  const double t2 = now_seconds();
  const CpuMark c2 = cpu_mark(watcher);
  control->park_seconds = t1 - t0;
  control->wake_seconds = t2 - t1;
  control->park_cpu_owner = c1.owner - c0.owner;
  control->park_cpu_parker = c1.parker - c0.parker;
  control->wake_cpu_owner = c2.owner - c1.owner;
  control->wake_cpu_parker = c2.parker - c1.parker;
  held.swap(back);
}

}  // namespace parker::bench
