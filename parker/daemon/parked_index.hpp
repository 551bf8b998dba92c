// ParkedIndex: a pool's parked connections by id — an open-addressing hash table of 4-byte
// entries naming the fd, whose record (in the ParkedTable) holds the id.
//
// Why not std::unordered_map: a node a connection (a 32-byte malloc chunk at least, plus a
// bucket pointer) would cost more than the record itself. Here an entry is 4 bytes: the fd
// in its low bits and, above them, a few bits of the id's hash, so that a probe compares a
// tag before it reads a record (a cache miss) — most probes of a lookup that misses read
// no record at all. Linear probing, at most 3/4 full; an erase shifts the entries after it
// back (no tombstones), and the table halves when it falls below 1/8 full, so a pool that
// empties gives its memory back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "parked_table.hpp"

namespace parker::daemon {

class ParkedIndex {
 public:
  explicit ParkedIndex(const ParkedTable& table);

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] ParkedSocket* find(std::uint64_t id) const noexcept;
  [[nodiscard]] bool contains(std::uint64_t id) const noexcept { return find(id) != nullptr; }
  // Adds the record (its id must not be in the index yet).
  void insert(const ParkedSocket& socket);
  void erase(const ParkedSocket& socket) noexcept;
  // The fds of every record, for a walk that may erase them (shutdown, hand-over).
  [[nodiscard]] std::vector<int> fds() const;
  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t e : slots_) {
      if (e != 0) f(table_[fd_of(e)]);
    }
  }

 private:
  [[nodiscard]] static std::uint64_t hash(std::uint64_t id) noexcept;
  [[nodiscard]] std::size_t home(std::uint64_t h) const noexcept { return static_cast<std::size_t>(h >> shift_); }
  [[nodiscard]] std::uint32_t tag_of(std::uint64_t h) const noexcept {
    return static_cast<std::uint32_t>(h) & tag_mask_;
  }
  [[nodiscard]] std::uint32_t fd_of(std::uint32_t entry) const noexcept { return (entry & fd_mask_) - 1; }
  [[nodiscard]] std::uint32_t entry_for(const ParkedSocket& socket, std::uint64_t h) const noexcept;
  void resize(std::size_t buckets);
  void place(std::uint32_t entry, std::uint64_t h) noexcept;

  const ParkedTable& table_;
  std::vector<std::uint32_t> slots_;  // 0 = empty; else (tag << fd_bits) | (fd + 1)
  std::size_t size_ = 0;
  unsigned shift_ = 64;               // 64 - log2(buckets)
  std::uint32_t fd_mask_ = 0;         // low fd_bits
  std::uint32_t tag_mask_ = 0;        // the bits above them, as a mask over the hash
};

}  // namespace parker::daemon
