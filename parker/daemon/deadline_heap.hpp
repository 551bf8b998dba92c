// DeadlineHeap: a binary min-heap of pointers ordered by each entry's deadline, so one timer
// serves every parked connection (no timer per connection).
//
// Intrusive: an entry T has `std::uint64_t deadline` and `std::uint32_t index` members; the
// heap keeps `index` equal to the entry's position, so erase() of any entry is O(log n)
// without a search. An entry not in the heap has index == kNotInHeap. The heap stores only
// pointers (8 bytes per entry); entries must not move while they are in it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace parker::daemon {

inline constexpr std::uint32_t kNotInHeap = 0xffffffffu;

template <class T>
class DeadlineHeap {
 public:
  [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
  [[nodiscard]] T* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

  void push(T& entry) {
    entry.index = static_cast<std::uint32_t>(heap_.size());
    heap_.push_back(&entry);
    sift_up(entry.index);
  }

  // Removes `entry` if it is in the heap (no-op otherwise).
  void erase(T& entry) noexcept {
    std::uint32_t i = entry.index;
    if (i == kNotInHeap || i >= heap_.size() || heap_[i] != &entry) return;
    entry.index = kNotInHeap;
    T* last = heap_.back();
    heap_.pop_back();
    if (last == &entry) return;
    heap_[i] = last;
    last->index = i;
    sift_down(i);
    sift_up(last->index);
  }

  // Removes and returns the entry with the earliest deadline, if it is at or before `now`.
  T* pop_expired(std::uint64_t now) noexcept {
    T* first = top();
    if (first == nullptr || first->deadline > now) return nullptr;
    erase(*first);
    return first;
  }

 private:
  void place(std::uint32_t i, T* e) noexcept {
    heap_[i] = e;
    e->index = i;
  }
  void sift_up(std::uint32_t i) noexcept {
    T* e = heap_[i];
    while (i > 0) {
      std::uint32_t parent = (i - 1) / 2;
      if (heap_[parent]->deadline <= e->deadline) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  void sift_down(std::uint32_t i) noexcept {
    T* e = heap_[i];
    auto n = static_cast<std::uint32_t>(heap_.size());
    for (;;) {
      std::uint32_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && heap_[child + 1]->deadline < heap_[child]->deadline) ++child;
      if (heap_[child]->deadline >= e->deadline) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, e);
  }

  std::vector<T*> heap_;
};

}  // namespace parker::daemon
