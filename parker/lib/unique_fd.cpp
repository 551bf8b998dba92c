#include "parker/unique_fd.hpp"

#include <unistd.h>

namespace parker {

void UniqueFd::reset(int fd) noexcept {
  int old = std::exchange(fd_, fd);
  // close() is never retried: on Linux the fd is gone even when it reports EINTR, and a
  // retry could close a descriptor another thread has just been given.
  if (old >= 0) ::close(old);
}

}  // namespace parker
