// WorkingSet: the deliberately heavy memory of an active session (what a database backend or
// an IMAP session would hold), really touched so it counts in RSS.
//
// It is mapped with mmap and unmapped on release, rather than malloc'd: glibc raises its mmap
// threshold after the first large free, after which 256 KiB blocks would come from the heap and
// free() would keep them — a parked session must give its memory back to the OS for real.
#pragma once

#include <cstddef>

namespace heavy {

class WorkingSet {
 public:
  WorkingSet() noexcept = default;
  ~WorkingSet() { release(); }
  WorkingSet(const WorkingSet&) = delete;
  WorkingSet& operator=(const WorkingSet&) = delete;
  WorkingSet(WorkingSet&& other) noexcept;
  WorkingSet& operator=(WorkingSet&& other) noexcept;

  // Maps and touches `bytes` (0: nothing). False when the kernel refuses the memory.
  [[nodiscard]] bool allocate(std::size_t bytes) noexcept;
  // Unmaps it: the pages go back to the OS at once.
  void release() noexcept;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] const unsigned char* data() const noexcept { return static_cast<const unsigned char*>(data_); }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace heavy
