// Capacity: how many client fds parker may hold, and the credit that keeps owners within it.
//
// Why: when a process has no free descriptor slot, recvmsg() drops the fds in flight and
// reports MSG_CTRUNC — clients silently lost. So parker only lets owners send as many fds
// as it has slots for. Every client fd parker is responsible for is in exactly one of:
//   outstanding credit (granted, not yet arrived), parked, held for an absent owner, or
//   queued for sending back (WAKE / REJECTED);
// and  fds + credit <= budget  always holds for what parker granted. (A peer that sends
// beyond its credit gets those fds back at once in REJECTED `no_credit`; the fixed reserve
// absorbs them meanwhile.)
//
// budget = RLIMIT_NOFILE - fixed reserve (stdio, loop, listener, spare fd, log file...)
//          - max(open sessions, session reserve) - read headroom (one frame's fds)
//
// Credit alone cannot make a recvmsg safe: sessions come and go (each takes a slot), and a
// peer may send beyond its credit. So a session is read only while room_to_read(): at least
// one whole frame's worth of descriptors (253) is really free right now, counting the fds
// sitting in frame readers. Otherwise its fds wait in its socket, charged to the sender,
// until room comes back — never truncated (MSG_CTRUNC) into oblivion.
#pragma once

#include <cstddef>
#include <cstdint>

namespace parker::daemon {

class Capacity {
 public:
  // `fd_limit` is the soft RLIMIT_NOFILE in force.
  explicit Capacity(std::size_t fd_limit) noexcept;

  [[nodiscard]] std::size_t fd_limit() const noexcept { return fd_limit_; }
  [[nodiscard]] std::size_t fixed_reserve() const noexcept { return fixed_reserve_; }
  [[nodiscard]] std::size_t session_reserve() const noexcept { return session_reserve_; }
  // Client fds parker may be responsible for at once (parked + held + queued + credit).
  [[nodiscard]] std::size_t budget() const noexcept;
  // Lowers the budget to `max` client fds (--max-parked), so that owners are granted no
  // credit for parks that would only be refused. 0: no cap below what the fd limit allows.
  void cap_budget(std::size_t max) noexcept { cap_ = max; }
  [[nodiscard]] std::size_t client_fds() const noexcept { return client_fds_; }
  [[nodiscard]] std::size_t credit() const noexcept { return credit_; }
  [[nodiscard]] std::size_t used() const noexcept { return client_fds_ + credit_; }
  [[nodiscard]] std::size_t available() const noexcept;
  [[nodiscard]] std::size_t sessions() const noexcept { return sessions_; }
  [[nodiscard]] std::size_t reader_fds() const noexcept { return reader_fds_; }
  // Descriptor slots free right now (an estimate: the fixed reserve stands for parker's own).
  [[nodiscard]] std::size_t free_slots() const noexcept;
  // Whether one more recvmsg, with up to a whole frame's fds, is sure to find slots for them.
  [[nodiscard]] bool room_to_read() const noexcept;
  // Slots kept free for one read's fds (a whole frame's: 253, less with a tiny fd limit).
  [[nodiscard]] std::size_t read_headroom() const noexcept;
  // A session's frame reader went from holding `before` to `after` fds not yet taken by a
  // frame (or closed with it).
  void reader_fds_changed(std::size_t before, std::size_t after) noexcept { reader_fds_ = reader_fds_ - before + after; }

  void session_opened() noexcept { ++sessions_; }
  void session_closed() noexcept;

  // Grants up to `wanted` credit (less when room is short); returns what was granted.
  [[nodiscard]] std::uint32_t grant(std::uint32_t wanted) noexcept;
  // A session's unused credit comes back (it closed).
  void return_credit(std::size_t n) noexcept;
  // Fds arrived: `credited` of them used granted credit, `uncredited` did not.
  void fds_arrived(std::size_t credited, std::size_t uncredited) noexcept;
  // Fds left parker (sent to a peer, or closed).
  void fds_released(std::size_t n) noexcept;

 private:
  std::size_t fd_limit_;
  std::size_t fixed_reserve_;
  std::size_t session_reserve_;
  std::size_t sessions_ = 0;
  std::size_t client_fds_ = 0;
  std::size_t credit_ = 0;
  std::size_t reader_fds_ = 0;
  std::size_t cap_ = 0;  // 0: none
};

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
[[nodiscard]] std::size_t raise_fd_limit() noexcept;

}  // namespace parker::daemon
