// Counting open descriptors, to prove a test leaked none, and telling them apart.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace parker::test {

// Open fds of this process (/proc/self/fd, not counting the directory's own fd).
[[nodiscard]] std::size_t open_fd_count();
// Open fds of another process (/proc/PID/fd).
[[nodiscard]] std::size_t open_fd_count(pid_t pid);
// The inode of what `fd` refers to: two fds with the same one are the same socket (a
// passed fd is a new number for the same open file). Throws if `fd` is not open.
[[nodiscard]] ino_t inode_of(int fd);

}  // namespace parker::test
