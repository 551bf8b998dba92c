// Passing file descriptors over a Unix domain socket (SCM_RIGHTS), hard to get wrong.
//
// How it works: sendmsg() can carry an "ancillary" control message listing fds; the
// kernel installs duplicates of them in the receiving process. On a SOCK_STREAM socket
// the fds ride on the first byte of the data sent with them, so
//   - a message with fds must carry at least one byte of data;
//   - after a short write the rest is sent without fds (send_with_fds never sends them
//     twice: once any byte went, the fds went with it);
//   - the receiver gets them with whichever recvmsg() reads that byte.
// On SOCK_SEQPACKET (Linux, the BSDs; not macOS) each message keeps its own boundary.
//
// Ownership: the sender keeps its own copies (close them when you are done: the receiver
// has its own). Received fds are returned as UniqueFd, close-on-exec from birth.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker {

// The kernel's SCM_MAX_FD: the most fds one sendmsg() may carry.
inline constexpr std::size_t kMaxFdsPerMessage = 253;

// One sendmsg(): `data` (must not be empty) with `fds` (0..kMaxFdsPerMessage) attached to
// its first byte. EINTR is retried; SIGPIPE is never raised (EPIPE is returned instead).
// Returns the bytes sent, which may be fewer than data.size() on a stream socket; if it is
// more than zero the fds were delivered. EAGAIN is returned on a full non-blocking socket
// and nothing was sent.
[[nodiscard]] Result<std::size_t> send_with_fds(int socket, std::span<const std::byte> data,
                                                std::span<const int> fds);

// For blocking sockets: sends all of `data`, the fds with the first byte only, looping over
// short writes. On error, `sent` (if given) tells how many bytes went before it.
[[nodiscard]] Error send_all_with_fds(int socket, std::span<const std::byte> data,
                                      std::span<const int> fds, std::size_t* sent = nullptr);

// One recvmsg() into `buffer`, accepting up to `max_fds` fds, which are appended to `fds`.
// Returns the bytes read (0 means the peer closed). EINTR is retried; EAGAIN is returned
// on an empty non-blocking socket.
//
// If the kernel truncated the control data (MSG_CTRUNC: more fds were sent than `max_fds`,
// or this process is out of descriptors) every fd that did arrive is closed, none is
// appended, and the error is kErrControlTruncated; `value` still tells how many data bytes
// were consumed. Control messages other than SCM_RIGHTS (e.g. credentials) are ignored.
[[nodiscard]] Result<std::size_t> receive_with_fds(int socket, std::span<std::byte> buffer,
                                                   std::vector<UniqueFd>& fds,
                                                   std::size_t max_fds = kMaxFdsPerMessage);

}  // namespace parker
