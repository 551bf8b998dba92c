#include "capacity.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace parker::daemon {
namespace {
// stdio (3), the loop's epoll fd and signal pipes (~5), the listener, the spare fd kept for
// EMFILE, a log file, and a few for luck (spdlog, /proc reads by libuv).
constexpr std::size_t kFixedReserve = 24;
constexpr std::size_t kMaxSessionReserve = 64;
// One frame's fds: what a single recvmsg may bring (SCM_MAX_FD).
constexpr std::size_t kReadHeadroom = 253;
}  // namespace

Capacity::Capacity(std::size_t fd_limit) noexcept
    : fd_limit_(fd_limit),
      fixed_reserve_(std::min(kFixedReserve, fd_limit / 2)),
      session_reserve_(std::clamp<std::size_t>(fd_limit / 64, 2, kMaxSessionReserve)) {}

std::size_t Capacity::budget() const noexcept {
  std::size_t taken = fixed_reserve_ + std::max(sessions_, session_reserve_) + read_headroom();
  const std::size_t room = fd_limit_ > taken ? fd_limit_ - taken : 0;
  return cap_ != 0 ? std::min(room, cap_) : room;
}

std::size_t Capacity::available() const noexcept {
  std::size_t b = budget();
  return b > used() ? b - used() : 0;
}

std::size_t Capacity::free_slots() const noexcept {
  std::size_t taken = fixed_reserve_ + sessions_ + client_fds_ + reader_fds_;
  return fd_limit_ > taken ? fd_limit_ - taken : 0;
}

std::size_t Capacity::read_headroom() const noexcept { return std::min(kReadHeadroom, fd_limit_ / 8); }

bool Capacity::room_to_read() const noexcept { return free_slots() >= read_headroom(); }

void Capacity::session_closed() noexcept {
  if (sessions_ > 0) --sessions_;
}

std::uint32_t Capacity::grant(std::uint32_t wanted) noexcept {
  auto n = static_cast<std::uint32_t>(std::min<std::size_t>(wanted, available()));
  credit_ += n;
  return n;
}

void Capacity::return_credit(std::size_t n) noexcept { credit_ -= std::min(n, credit_); }

void Capacity::fds_arrived(std::size_t credited, std::size_t uncredited) noexcept {
  credit_ -= std::min(credited, credit_);
  client_fds_ += credited + uncredited;
}

void Capacity::fds_released(std::size_t n) noexcept { client_fds_ -= std::min(n, client_fds_); }

std::size_t raise_fd_limit() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY) return 1u << 20;
  return static_cast<std::size_t>(lim.rlim_cur);
}

}  // namespace parker::daemon
