#include "parker/fd_passing.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace parker {
namespace {

// Room for a full SCM_RIGHTS array plus, on Linux, one SCM_CREDENTIALS message a peer with
// SO_PASSCRED may add; anything else that does not fit shows up as MSG_CTRUNC.
#if defined(__linux__)
constexpr std::size_t kCredentialsSpace = CMSG_SPACE(sizeof(struct ucred));
constexpr int kRecvFlags = MSG_CMSG_CLOEXEC;
#else
constexpr std::size_t kCredentialsSpace = 0;
constexpr int kRecvFlags = 0;
#endif

#if defined(MSG_NOSIGNAL)
constexpr int kSendFlags = MSG_NOSIGNAL;
#else
constexpr int kSendFlags = 0;  // macOS: SO_NOSIGPIPE must be set on the socket instead
#endif

constexpr std::size_t kControlSpace =
    CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage) + kCredentialsSpace;

union ControlBuffer {
  struct cmsghdr align;
  char bytes[kControlSpace];
};

// Takes every fd out of the SCM_RIGHTS messages of `msg` into `out`, so none can leak.
void collect_fds(msghdr& msg, std::vector<UniqueFd>& out) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, data + i * sizeof(int), sizeof fd);  // CMSG_DATA may be unaligned
      out.emplace_back(fd);
#if !defined(__linux__)
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // no MSG_CMSG_CLOEXEC here: close the exec window
#endif
    }
  }
}

}  // namespace

Result<std::size_t> send_with_fds(int socket, std::span<const std::byte> data,
                                  std::span<const int> fds) {
  if (data.empty() || fds.size() > kMaxFdsPerMessage) return {0, Error{EINVAL}};
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ControlBuffer control;
  if (!fds.empty()) {
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = ::sendmsg(socket, &msg, kSendFlags);
    if (n >= 0) return {static_cast<std::size_t>(n), {}};
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return {0, Error{EAGAIN}};
    return {0, Error::from_errno()};
  }
}

Error send_all_with_fds(int socket, std::span<const std::byte> data, std::span<const int> fds,
                        std::size_t* sent) {
  std::size_t done = 0;
  Error error;
  while (done < data.size()) {
    // Only the first successful sendmsg() carries the fds.
    auto result = send_with_fds(socket, data.subspan(done), done == 0 ? fds : std::span<const int>{});
    if (!result.ok()) {
      error = result.error;
      break;
    }
    done += result.value;
  }
  if (sent != nullptr) *sent = done;
  return error;
}

Result<std::size_t> receive_with_fds(int socket, std::span<std::byte> buffer,
                                     std::vector<UniqueFd>& fds, std::size_t max_fds) {
  if (buffer.empty()) return {0, Error{EINVAL}};
  max_fds = std::min(max_fds, kMaxFdsPerMessage);
  iovec iov{buffer.data(), buffer.size()};
  ControlBuffer control;
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds) + kCredentialsSpace;
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, kRecvFlags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EWOULDBLOCK) return {0, Error{EAGAIN}};
    return {0, Error::from_errno()};
  }
  std::vector<UniqueFd> arrived;
  collect_fds(msg, arrived);
  // The credentials room can let a few fds more than max_fds fit: that is a truncation too,
  // from the caller's point of view. `arrived` closes them all on return.
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || arrived.size() > max_fds) {
    return {static_cast<std::size_t>(n), Error{kErrControlTruncated}};
  }
  for (auto& fd : arrived) fds.push_back(std::move(fd));
  return {static_cast<std::size_t>(n), {}};
}

}  // namespace parker
