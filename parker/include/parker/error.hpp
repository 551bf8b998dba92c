// Errors of the library: errno values, never exceptions, never logging.
//
// Every call that can fail returns an `Error` (code 0 means success) or a `Result<T>`;
// `describe()` turns any of them into the text a program prints. Codes are plain errno
// values (EAGAIN, EPIPE, ...) plus a few of our own above kErrBase, so callers compare
// against the usual names and one call explains each.
#pragma once

#include <string>

namespace parker {

inline constexpr int kErrBase = 0x10000;
// recvmsg reported MSG_CTRUNC: the control buffer was too small, or this process is out
// of descriptors, and the kernel dropped fds. Every fd that did arrive has been closed.
inline constexpr int kErrControlTruncated = kErrBase + 1;
// The path given to listen_unix() exists and is not a socket: we refuse to replace it.
inline constexpr int kErrNotASocketPath = kErrBase + 2;

struct Error {
  int code = 0;  // 0, an errno value, or one of the kErr constants above

  [[nodiscard]] bool ok() const noexcept { return code == 0; }
  [[nodiscard]] bool failed() const noexcept { return code != 0; }
  [[nodiscard]] bool is(int errno_value) const noexcept { return code == errno_value; }
  friend bool operator==(const Error&, const Error&) = default;

  // The current errno as an Error; call right after the failing system call.
  [[nodiscard]] static Error from_errno() noexcept;
};

// A value or the error that prevented it.
template <class T>
struct Result {
  T value{};
  Error error;
  [[nodiscard]] bool ok() const noexcept { return error.ok(); }
};

// "Resource temporarily unavailable (EAGAIN)", "control message truncated (MSG_CTRUNC)...".
[[nodiscard]] std::string describe(Error error);

}  // namespace parker
