// KeptStore: the keeper's copies of parker's connections, by pool and id, with what parker
// knows of each (the HANDOVER record: flags, blob, deadline) and whether it was parked or
// already woken (a held wake, with the bytes parker could not write to it if it was woken
// write_blocked) when parker last said.
//
// The store only holds: it never reads, writes or watches a connection. parker watches its
// own copies and tells the store what changed, in order, over one stream; so the store is
// always at most one unsent batch behind parker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"

namespace parker::keeper {

class KeptStore {
 public:
  // `now_ms` is CLOCK_MONOTONIC milliseconds, which every process of the machine shares: a
  // deadline survives the parker that set it.
  using Clock = std::uint64_t (*)();
  explicit KeptStore(Clock clock) : clock_(clock) {}

  // A parked connection (or a held wake) to keep, replacing any copy kept under its pool and
  // id: the owner parked it again, so the older copy is of no use. Takes `fd`.
  void keep(protocol::HandoverRecord record, UniqueFd fd);
  // False when nothing matched (harmless: parker's updates may name a copy it never sent, as
  // when the keeper came after the park).
  bool update(const protocol::KeepUpdateRecord& update);

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t parked() const noexcept { return size_ - held_; }
  [[nodiscard]] std::size_t held() const noexcept { return held_; }
  // Held wakes that carry unsent bytes (KEEP_UPDATE woken_unsent, HANDOVER kind 4).
  [[nodiscard]] std::size_t with_unsent() const noexcept { return with_unsent_; }

  // Every copy as a HANDOVER record with the fd it goes with (still the store's: only lent),
  // deadlines as time left from now.
  struct Lent {
    protocol::HandoverRecord record;
    int fd;
  };
  [[nodiscard]] std::vector<Lent> lend_all() const;

  // Closes every copy.
  void clear() noexcept;

 private:
  struct Kept {
    protocol::HandoverRecord record;  // deadline_left_ms unused: see deadline_ms
    std::uint64_t deadline_ms = 0;    // CLOCK_MONOTONIC; 0 = none
    UniqueFd fd;
  };
  using Pool = std::unordered_map<std::uint64_t, Kept>;

  Clock clock_;
  std::map<std::string, Pool, std::less<>> pools_;
  std::size_t size_ = 0;
  std::size_t held_ = 0;
  std::size_t with_unsent_ = 0;
};

// CLOCK_MONOTONIC in milliseconds.
[[nodiscard]] std::uint64_t monotonic_ms() noexcept;

}  // namespace parker::keeper
