// UniqueFd: the one owner of a file descriptor.
//
// Invariant: at every moment an open fd belongs to exactly one UniqueFd (or has been
// release()d to a caller who takes over). Moving transfers ownership; destruction closes.
//
// How a function says what it does with an fd it is given, everywhere in this project:
//   f(UniqueFd fd)    always takes it: on failure the callee closes it (or keeps it).
//   f(UniqueFd& fd)   takes it only on success (moved out, `fd` left invalid); on failure
//                     `fd` is left with the caller, still open, to retry, reject or close.
// So a caller never has to ask whether an error also cost it the fd: the signature says.
#pragma once

#include <utility>

namespace parker {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  ~UniqueFd() { reset(); }

  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing; the caller now owns the returned fd.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the current fd (if any) and takes ownership of `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace parker
