// DeadlineHeap: a binary min-heap of keys ordered by each entry's deadline, so one timer
// serves every parked connection (no timer per connection).
//
// Intrusive: the heap holds 4-byte keys into a `Table` (anything whose operator[](key) gives
// an entry with `deadline` and `std::uint32_t index` members: the ParkedTable, by fd). The
// heap keeps `index` equal to the entry's position, so erase() of any entry is O(log n)
// without a search. An entry not in the heap has index == kNotInHeap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace parker::daemon {

inline constexpr std::uint32_t kNotInHeap = 0xffffffffu;

template <class Table>
class DeadlineHeap {
 public:
  explicit DeadlineHeap(Table& table) : table_(table) {}

  [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
  [[nodiscard]] std::optional<std::uint32_t> top() const noexcept {
    if (heap_.empty()) return std::nullopt;
    return heap_.front();
  }
  [[nodiscard]] std::uint64_t deadline_of(std::uint32_t key) const noexcept { return entry(key).deadline; }

  void push(std::uint32_t key) {
    entry(key).index = static_cast<std::uint32_t>(heap_.size());
    heap_.push_back(key);
    sift_up(entry(key).index);
  }

  // Removes `key` if it is in the heap (no-op otherwise).
  void erase(std::uint32_t key) noexcept {
    std::uint32_t i = entry(key).index;
    if (i == kNotInHeap || i >= heap_.size() || heap_[i] != key) return;
    entry(key).index = kNotInHeap;
    std::uint32_t last = heap_.back();
    heap_.pop_back();
    if (last == key) return;
    place(i, last);
    sift_down(i);
    sift_up(entry(last).index);
  }

  // Removes and returns the entry with the earliest deadline, if it is at or before `now`.
  std::optional<std::uint32_t> pop_expired(std::uint64_t now) noexcept {
    if (heap_.empty() || entry(heap_.front()).deadline > now) return std::nullopt;
    std::uint32_t first = heap_.front();
    erase(first);
    return first;
  }

 private:
  auto& entry(std::uint32_t key) const noexcept { return table_[key]; }
  [[nodiscard]] std::uint64_t at(std::uint32_t i) const noexcept { return entry(heap_[i]).deadline; }
  void place(std::uint32_t i, std::uint32_t key) noexcept {
    heap_[i] = key;
    entry(key).index = i;
  }
  void sift_up(std::uint32_t i) noexcept {
    const std::uint32_t key = heap_[i];
    const std::uint64_t d = entry(key).deadline;
    while (i > 0) {
      std::uint32_t parent = (i - 1) / 2;
      if (at(parent) <= d) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, key);
  }
  void sift_down(std::uint32_t i) noexcept {
    const std::uint32_t key = heap_[i];
    const std::uint64_t d = entry(key).deadline;
    auto n = static_cast<std::uint32_t>(heap_.size());
    for (;;) {
      std::uint32_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && at(child + 1) < at(child)) ++child;
      if (at(child) >= d) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, key);
  }

  Table& table_;
  std::vector<std::uint32_t> heap_;
};

}  // namespace parker::daemon
