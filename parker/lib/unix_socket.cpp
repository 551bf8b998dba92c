#include "parker/unix_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace parker {
namespace {

int stream_if_zero(int type) { return type == 0 ? SOCK_STREAM : type; }

// A socket that is close-on-exec from birth where the platform allows (SOCK_CLOEXEC);
// macOS lacks it, so there it is set right after.
Result<UniqueFd> make_socket(int type, bool nonblocking) {
#if defined(SOCK_CLOEXEC)
  int flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
  UniqueFd fd(::socket(AF_UNIX, type | flags, 0));
  if (!fd) return {{}, Error::from_errno()};
#else
  UniqueFd fd(::socket(AF_UNIX, type, 0));
  if (!fd) return {{}, Error::from_errno()};
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  if (nonblocking) {
    if (auto e = set_nonblocking(fd.get()); e.failed()) return {{}, e};
  }
#endif
  return {std::move(fd), {}};
}

bool is_abstract(std::string_view path) { return !path.empty() && path.front() == '@'; }

// Fills a sockaddr_un; "@name" becomes a Linux abstract address (leading NUL byte).
Result<socklen_t> make_address(std::string_view path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return {0, Error{EINVAL}};
  if (path.size() >= sizeof addr.sun_path) return {0, Error{ENAMETOOLONG}};
#if !defined(__linux__)
  if (is_abstract(path)) return {0, Error{EAFNOSUPPORT}};
#endif
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (is_abstract(path)) addr.sun_path[0] = '\0';
  auto len = offsetof(sockaddr_un, sun_path) + path.size() + (is_abstract(path) ? 0 : 1);
  return {static_cast<socklen_t>(len), {}};
}

Error connect_to(int fd, std::string_view path) {
  sockaddr_un addr;
  auto len = make_address(path, addr);
  if (!len.ok()) return len.error;
  // A connect() interrupted by a signal carries on asynchronously; waiting for it would
  // need poll(). Unix sockets connect immediately, so EINTR here is simply reported.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len.value) != 0) return Error::from_errno();
  return {};
}

// Makes `path` free for bind(): nothing there, or a socket file nobody listens on any
// more (removed). Refuses anything else, so a typo never deletes a user's file.
Error clear_stale_socket(const std::string& path, int type) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Error{} : Error::from_errno();
  if (!S_ISSOCK(st.st_mode)) return Error{kErrNotASocketPath};
  // Non-blocking: a blocking connect() to a live listener with a full backlog would wait
  // until it accepts; EAGAIN says just as well that somebody is alive there.
  auto probe = make_socket(type, true);
  if (!probe.ok()) return probe.error;
  Error e = connect_to(probe.value.get(), path);
  if (e.ok() || e.is(EAGAIN) || e.is(EINPROGRESS)) return Error{EADDRINUSE};
  if (!e.is(ECONNREFUSED)) return e;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Error::from_errno();
  return {};
}

}  // namespace

Error set_nonblocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return Error::from_errno();
  int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) return Error::from_errno();
  return {};
}

Result<UniqueFd> listen_unix(std::string_view path, const ListenOptions& options) {
  int type = stream_if_zero(options.type);
  const std::string file(path);
  if (!is_abstract(path)) {
    if (auto e = clear_stale_socket(file, type); e.failed()) return {{}, e};
  }
  auto sock = make_socket(type, options.nonblocking);
  if (!sock.ok()) return sock;
  sockaddr_un addr;
  auto len = make_address(path, addr);
  if (!len.ok()) return {{}, len.error};
  // Linux creates the file with the socket inode's mode minus the umask, so narrowing the
  // inode first means the file never exists with wider permissions than asked for.
  ::fchmod(sock.value.get(), options.mode);
  if (::bind(sock.value.get(), reinterpret_cast<sockaddr*>(&addr), len.value) != 0) {
    return {{}, Error::from_errno()};
  }
  if (!is_abstract(path) && ::chmod(file.c_str(), options.mode) != 0) {
    Error e = Error::from_errno();
    ::unlink(file.c_str());
    return {{}, e};
  }
  if (::listen(sock.value.get(), options.backlog) != 0) {
    Error e = Error::from_errno();
    if (!is_abstract(path)) ::unlink(file.c_str());
    return {{}, e};
  }
  return sock;
}

Result<UniqueFd> connect_unix(std::string_view path, int type, bool nonblocking) {
  auto sock = make_socket(stream_if_zero(type), false);
  if (!sock.ok()) return sock;
  if (auto e = connect_to(sock.value.get(), path); e.failed()) return {{}, e};
  if (nonblocking) {
    if (auto e = set_nonblocking(sock.value.get()); e.failed()) return {{}, e};
  }
  return sock;
}

Result<UniqueFd> accept_connection(int listener, bool nonblocking) {
  for (;;) {
#if defined(__linux__) || defined(__FreeBSD__)
    int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0));
#else
    int fd = ::accept(listener, nullptr, nullptr);
#endif
    if (fd >= 0) {
      UniqueFd owned(fd);
#if !(defined(__linux__) || defined(__FreeBSD__))
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      if (auto e = set_nonblocking(fd, nonblocking); e.failed()) return {{}, e};
#endif
      return {std::move(owned), {}};
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EWOULDBLOCK) return {{}, Error{EAGAIN}};
    return {{}, Error::from_errno()};
  }
}

Result<std::pair<UniqueFd, UniqueFd>> make_socket_pair(int type, bool nonblocking) {
  int fds[2];
  int flags = 0;
#if defined(SOCK_CLOEXEC)
  flags = SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0);
#endif
  if (::socketpair(AF_UNIX, stream_if_zero(type) | flags, 0, fds) != 0) {
    return {{}, Error::from_errno()};
  }
  std::pair<UniqueFd, UniqueFd> pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
#if !defined(SOCK_CLOEXEC)
  for (int fd : fds) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (nonblocking) (void)set_nonblocking(fd);
  }
#endif
  return {std::move(pair), {}};
}

Result<int> socket_type(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return {0, Error::from_errno()};
  return {type, {}};
}

}  // namespace parker
