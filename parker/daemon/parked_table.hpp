// ParkedTable: the record of every parked connection in the daemon, in one flat table
// indexed by the connection's fd — as HAProxy's fdtab and nginx's connection array are.
//
// Why by fd: the kernel hands out the lowest free descriptor, so a process's fds are dense
// in [0, RLIMIT_NOFILE) and the fd itself is the slot: a record needs no fd field, no
// pointer to it from a hash node, and the readiness set and the deadline heap name a
// socket by its fd (4 bytes). The table reserves address space for every fd the process
// may open (RLIMIT_NOFILE × 32 bytes, MAP_NORESERVE) and the kernel backs only the pages
// that parked records touch, so a record never moves: a ParkedSocket& stays valid until the
// record is erased.
//
// Ownership: the table owns the fd of every occupied slot — insert() takes it, erase()
// hands it back as a UniqueFd — and the record owns its blob. A record knows its pool by a
// 16-bit number the table gives each Pool (add_pool), not by an 8-byte pointer.
//
// Memory per parked connection (blob bytes aside): this 32-byte record, ~7-14 bytes of the
// pool's id index (parked_index.hpp), 4 bytes of deadline heap when it has a deadline, and
// the blob's malloc rounding. docs/ARCHITECTURE.md "Memory" has the measured figure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "parked_socket.hpp"
#include "parker/unique_fd.hpp"

namespace parker::daemon {

class Pool;

class ParkedTable {
 public:
  // Room for fds 0 .. fd_limit-1 (the process's RLIMIT_NOFILE once raised).
  explicit ParkedTable(std::size_t fd_limit);
  ~ParkedTable();
  ParkedTable(const ParkedTable&) = delete;
  ParkedTable& operator=(const ParkedTable&) = delete;

  // Pools get a number (1 .. kMaxPools) for their records; 0 when every number is taken.
  static constexpr std::uint32_t kMaxPools = 0xffff;
  [[nodiscard]] std::uint16_t add_pool(Pool& pool);
  void remove_pool(std::uint16_t number) noexcept;
  [[nodiscard]] std::size_t pools() const noexcept { return pools_.size() - free_numbers_.size() - 1; }

  // Makes the record of `fd` (taken from the caller only on success) for pool `pool`.
  // Null, with `fd` untouched, when the fd is beyond the table (RLIMIT_NOFILE was raised
  // from outside after parker started) or already has a record.
  [[nodiscard]] ParkedSocket* insert(UniqueFd& fd, std::uint64_t id, std::uint16_t pool);
  // Destroys the record and hands its fd back.
  [[nodiscard]] UniqueFd erase(ParkedSocket& socket) noexcept;

  [[nodiscard]] int fd_of(const ParkedSocket& socket) const noexcept {
    return static_cast<int>(&socket - slots_);
  }
  // The record of a parked fd (the caller knows it is parked: the readiness set or the
  // deadline heap named it).
  [[nodiscard]] ParkedSocket& operator[](std::uint32_t fd) const noexcept { return slots_[fd]; }
  [[nodiscard]] Pool& pool_of(const ParkedSocket& socket) const noexcept { return *pools_[socket.pool]; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  ParkedSocket* slots_ = nullptr;  // capacity_ slots of reserved address space
  std::size_t capacity_ = 0;
  std::size_t reserved_bytes_ = 0;
  std::size_t size_ = 0;
  std::size_t high_water_ = 0;  // slots below it may have touched pages
  std::vector<bool> occupied_;  // to refuse a second record for an fd
  std::vector<Pool*> pools_{nullptr};   // by number; [0] is "none"
  std::vector<std::uint16_t> free_numbers_;
};

}  // namespace parker::daemon
