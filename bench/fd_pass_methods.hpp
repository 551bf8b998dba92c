// Three ways of passing fds between two processes, measured the same way: a forked
// receiver takes `total` fds in messages of `batch` and closes each one; the clock runs
// from the first send until the receiver says it has closed the last.
//
//   floor   — sendmsg/recvmsg written straight on the syscalls: the kernel's limit here
//   library — parker::send_with_fds / parker::receive_with_fds
//   libuv   — uv_write2 with one handle per write over an ipc pipe; the receiver takes
//             them with uv_pipe_pending_count/uv_accept (batch is always 1)
#pragma once

#include <chrono>
#include <cstddef>
#include <string_view>

namespace parker::bench {

enum class FdPassMethod { floor, library, libuv };
[[nodiscard]] std::string_view to_string(FdPassMethod method) noexcept;

// One repetition; returns fds per second. `fd_to_send` is a TCP socket (what parker
// passes). Throws std::runtime_error if the receiver fails or `timeout` passes.
[[nodiscard]] double measure_fd_passing(FdPassMethod method, std::size_t batch, std::size_t total,
                                        int fd_to_send, std::chrono::milliseconds timeout);

}  // namespace parker::bench
