#include "support/fd_count.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace parker::test {

namespace {
std::size_t count_entries(const std::string& dir) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}
}  // namespace

// directory_iterator holds one fd of its own while it runs: subtract it.
std::size_t open_fd_count() { return count_entries("/proc/self/fd") - 1; }
std::size_t open_fd_count(pid_t pid) { return count_entries("/proc/" + std::to_string(pid) + "/fd"); }

ino_t inode_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::runtime_error("inode_of: fd " + std::to_string(fd) + " is not open");
  return st.st_ino;
}

}  // namespace parker::test
