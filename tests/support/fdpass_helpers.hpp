// Helpers for the fd-passing tests: fds worth passing, and ways to prove the receiver got the
// very same open files, close-on-exec and usable. Header-only; the checks use Catch2.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parker/fd_passing.hpp"
#include "parker/unique_fd.hpp"
#include "parker/unix_socket.hpp"

namespace parker::test {

// A pipe as {read end, write end}, close-on-exec.
inline std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

inline std::pair<UniqueFd, UniqueFd> make_pair_or_throw(int type, bool nonblocking = false) {
  auto pair = make_socket_pair(type, nonblocking);
  if (!pair.ok()) throw std::runtime_error("socketpair: " + describe(pair.error));
  return std::move(pair.value);
}

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

// Which open file an fd refers to: two fds with the same identity are the same file.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

inline FileIdentity identity_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw std::runtime_error("fstat failed");
  return {st.st_dev, st.st_ino};
}

inline bool is_cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

inline std::vector<int> raw_fds(const std::vector<UniqueFd>& fds) {
  std::vector<int> out;
  for (const auto& fd : fds) out.push_back(fd.get());
  return out;
}

inline void write_text(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("write failed");
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads exactly `size` bytes from a blocking fd (fewer if it reaches end of file).
inline std::string read_text(int fd, std::size_t size) {
  std::string out(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, out.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

// Receives one message of known length from a blocking socket: reads never ask for more than
// is left of it, so on a stream socket no read runs into the next message and every fd that
// arrives belongs to this one. Returns the data (shorter if the peer closed).
inline std::string receive_message(int socket, std::size_t size, std::vector<UniqueFd>& fds,
                                   std::size_t max_fds = kMaxFdsPerMessage) {
  std::string data(size, '\0');
  std::size_t done = 0;
  while (done < size) {  // each pass reads at least one byte or stops
    auto buffer = std::as_writable_bytes(std::span(data.data() + done, size - done));
    auto got = receive_with_fds(socket, buffer, fds, max_fds);
    REQUIRE(got.error == Error{});
    if (got.value == 0) break;
    done += got.value;
  }
  data.resize(done);
  return data;
}

// N fds worth passing, of two kinds, each with its other end kept here to prove the receiver
// can use what it got: even ones are pipe write ends (the receiver writes, we read), odd ones
// are socket ends with a note already waiting in them (the receiver reads it).
struct FdBatch {
  std::vector<UniqueFd> to_send;
  std::vector<UniqueFd> kept;
  std::vector<FileIdentity> identities;

  static std::string note(std::size_t i) { return "note " + std::to_string(i) + ";"; }

  explicit FdBatch(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      if (i % 2 == 0) {
        auto [read_end, write_end] = make_pipe();
        to_send.push_back(std::move(write_end));
        kept.push_back(std::move(read_end));
      } else {
        auto [ours, theirs] = make_pair_or_throw(SOCK_STREAM);
        write_text(ours.get(), note(i));
        to_send.push_back(std::move(theirs));
        kept.push_back(std::move(ours));
      }
      identities.push_back(identity_of(to_send.back().get()));
    }
  }

  // The receiver's side: the same files, in order, close-on-exec, and each one works.
  void check_received(const std::vector<UniqueFd>& received) const {
    REQUIRE(received.size() == kept.size());
    for (std::size_t i = 0; i < received.size(); ++i) {
      int fd = received[i].get();
      INFO("fd #" << i);
      REQUIRE(identity_of(fd) == identities[i]);
      REQUIRE(is_cloexec(fd));
      if (i % 2 == 0) {
        write_text(fd, note(i));
        REQUIRE(read_text(kept[i].get(), note(i).size()) == note(i));
      } else {
        REQUIRE(read_text(fd, note(i).size()) == note(i));
      }
    }
  }
};

}  // namespace parker::test
