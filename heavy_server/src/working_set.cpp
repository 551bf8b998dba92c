#include "heavy/working_set.hpp"

#include <sys/mman.h>

#include <cstring>
#include <utility>

namespace heavy {

WorkingSet::WorkingSet(WorkingSet&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

WorkingSet& WorkingSet::operator=(WorkingSet&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

bool WorkingSet::allocate(std::size_t bytes) noexcept {
  release();
  if (bytes == 0) return true;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  // Touch every page with non-zero bytes: untouched anonymous pages are not resident and the
  // session would not really weigh anything.
  std::memset(p, 0x5a, bytes);
  data_ = p;
  size_ = bytes;
  return true;
}

void WorkingSet::release() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace heavy
