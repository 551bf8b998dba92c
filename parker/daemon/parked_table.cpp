#include "parked_table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <fstream>
#include <new>

namespace parker::daemon {
namespace {

// Below this many slots' worth of touched pages, giving them back is not worth a syscall.
constexpr std::size_t kTrimSlots = 4096;

// No process can have an fd at or above fs.nr_open, whatever RLIMIT_NOFILE says (some
// container runtimes set it to 2^30): the table need not reserve beyond it.
std::size_t highest_possible_fds(std::size_t fd_limit) {
  std::size_t nr_open = std::size_t{1} << 20;  // the kernel's default
  std::ifstream in("/proc/sys/fs/nr_open");
  if (std::size_t read = 0; in >> read && read != 0) nr_open = read;
  return std::min(fd_limit, nr_open);
}

}  // namespace

ParkedTable::ParkedTable(std::size_t fd_limit)
    : capacity_(highest_possible_fds(fd_limit)), occupied_(capacity_) {
  reserved_bytes_ = capacity_ * sizeof(ParkedSocket);
  if (reserved_bytes_ == 0) return;
  // Address space only: the kernel backs a page when a record is first written to it.
  void* p = ::mmap(nullptr, reserved_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  slots_ = static_cast<ParkedSocket*>(p);
}

ParkedTable::~ParkedTable() {
  // Pools erase their records before they go; whatever is left is closed here.
  for (std::size_t fd = 0; size_ != 0 && fd < capacity_; ++fd) {
    if (occupied_[fd]) (void)erase(slots_[fd]);
  }
  if (slots_ != nullptr) ::munmap(slots_, reserved_bytes_);
}

std::uint16_t ParkedTable::add_pool(Pool& pool) {
  if (!free_numbers_.empty()) {
    std::uint16_t n = free_numbers_.back();
    free_numbers_.pop_back();
    pools_[n] = &pool;
    return n;
  }
  if (pools_.size() > kMaxPools) return 0;
  pools_.push_back(&pool);
  return static_cast<std::uint16_t>(pools_.size() - 1);
}

void ParkedTable::remove_pool(std::uint16_t number) noexcept {
  if (number == 0 || number >= pools_.size() || pools_[number] == nullptr) return;
  pools_[number] = nullptr;
  free_numbers_.push_back(number);
}

ParkedSocket* ParkedTable::insert(UniqueFd& fd, std::uint64_t id, std::uint16_t pool) {
  const int n = fd.get();
  if (n < 0 || static_cast<std::size_t>(n) >= capacity_ || occupied_[static_cast<std::size_t>(n)]) return nullptr;
  auto* s = new (&slots_[n]) ParkedSocket(id, pool);
  occupied_[static_cast<std::size_t>(n)] = true;
  (void)fd.release();  // the table's now
  ++size_;
  if (static_cast<std::size_t>(n) >= high_water_) high_water_ = static_cast<std::size_t>(n) + 1;
  return s;
}

UniqueFd ParkedTable::erase(ParkedSocket& socket) noexcept {
  const int fd = fd_of(socket);
  socket.~ParkedSocket();
  occupied_[static_cast<std::size_t>(fd)] = false;
  --size_;
  if (size_ == 0 && high_water_ >= kTrimSlots) {
    // Nothing parked: the pages go back to the kernel (they read as zeros if touched again),
    // so parker's memory returns to its baseline after a crowd leaves.
    (void)::madvise(slots_, high_water_ * sizeof(ParkedSocket), MADV_DONTNEED);
    high_water_ = 0;
  }
  return UniqueFd(fd);
}

}  // namespace parker::daemon
