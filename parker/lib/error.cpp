#include "parker/error.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace parker {

Error Error::from_errno() noexcept { return Error{errno}; }

namespace {

const char* errno_name(int code) {
  switch (code) {
    case EAGAIN: return "EAGAIN";
    case EINTR: return "EINTR";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EADDRINUSE: return "EADDRINUSE";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOTSOCK: return "ENOTSOCK";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EMSGSIZE: return "EMSGSIZE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EPROTO: return "EPROTO";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOTCONN: return "ENOTCONN";
    case EISCONN: return "EISCONN";
    case ENOBUFS: return "ENOBUFS";
    case ECONNABORTED: return "ECONNABORTED";
    case ENOTSUP: return "ENOTSUP";
    case ENOMEM: return "ENOMEM";
    default: return nullptr;
  }
}

}  // namespace

std::string describe(Error error) {
  switch (error.code) {
    case 0: return "success";
    case kErrControlTruncated:
      return "control message truncated (MSG_CTRUNC): the receiver's buffer was too small or "
             "it is out of file descriptors; the fds that arrived were closed";
    case kErrNotASocketPath:
      return "the path exists and is not a socket; refusing to replace it";
    default: break;
  }
  if (const char* name = errno_name(error.code)) {
    return fmt::format("{} ({})", std::strerror(error.code), name);
  }
  return fmt::format("{} (errno {})", std::strerror(error.code), error.code);
}

}  // namespace parker
