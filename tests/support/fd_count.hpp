// Counting open descriptors, to prove a test leaked none.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace parker::test {

// Open fds of this process (/proc/self/fd, not counting the directory's own fd).
[[nodiscard]] std::size_t open_fd_count();
// Open fds of another process (/proc/PID/fd).
[[nodiscard]] std::size_t open_fd_count(pid_t pid);

}  // namespace parker::test
