// What the socket fuzzers share: how an input becomes chunks (each one sendmsg, with real fds
// attached), sending them over a real Unix stream socket, and counting this process's fds to
// prove nothing leaked.
//
// Input format of fuzz_frame_reader and fuzz_client_incoming (make_seeds writes it):
//
//   chunk*    chunk = u8 fds | u8 flags | u16 length (LE) | length bytes
//
// Real fds ride on the chunk's first byte: `fds` of them (0..253, SCM_MAX_FD), or for 254 and
// 255 (kFdsAsDeclared) as many as the frame header the chunk starts with declares (so a mutated
// fd_count brings its fds along, as a well-behaved sender would; a chunk holding one whole
// frame sent that way is exactly what parker and the client write). A length past the end
// of the input takes what is left; a header cut short ends the input.
// Every loop over an input is bounded by its size: a fuzzer that hangs finds nothing.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "parker/unique_fd.hpp"
#include "parker/unix_socket.hpp"

namespace parker::fuzz {

inline constexpr std::size_t kChunkHeader = 4;
inline constexpr std::size_t kMaxFdsPerChunk = 253;
// Fds sent per input, all chunks together: far above what finds bugs, far below the fd limit
// (unanswered fds wait in the socket, counted against RLIMIT_NOFILE as "in flight").
inline constexpr std::size_t kMaxFdsPerInput = 1024;

inline constexpr std::uint8_t kFdsAsDeclared = 0xff;  // a chunk's `fds`: what its header says

inline constexpr std::uint8_t kDrainAfter = 0x01;  // let the receiver read before the next chunk
inline constexpr std::uint8_t kSocketFds = 0x02;   // attach socket ends rather than pipe ends

struct Chunk {
  std::size_t fds = 0;
  std::uint8_t flags = 0;
  std::span<const std::byte> bytes;
};

inline std::vector<Chunk> split_chunks(std::span<const std::byte> input) {
  std::vector<Chunk> chunks;
  while (input.size() >= kChunkHeader) {
    Chunk c;
    const auto fds = static_cast<std::uint8_t>(input[0]);
    c.flags = static_cast<std::uint8_t>(input[1]);
    std::size_t length = static_cast<std::size_t>(input[2]) | static_cast<std::size_t>(input[3]) << 8;
    input = input.subspan(kChunkHeader);
    length = std::min(length, input.size());
    c.bytes = input.first(length);
    input = input.subspan(length);
    if (fds <= kMaxFdsPerChunk) {
      c.fds = fds;
    } else if (c.bytes.size() >= 8) {  // the frame header's u16 fd_count, at offset 6
      c.fds = static_cast<std::size_t>(c.bytes[6]) | static_cast<std::size_t>(c.bytes[7]) << 8;
    }
    c.fds = std::min(c.fds, kMaxFdsPerChunk);
    chunks.push_back(c);
  }
  return chunks;
}

// Open fds of this process. Read through the raw syscalls: opendir's own fd is the one entry
// not counted, and nothing here allocates an fd that outlives the call.
inline std::size_t open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) __builtin_trap();
  std::size_t n = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;
}

// Lifts the soft fd limit to the hard one: a target that runs out of descriptors would test
// MSG_CTRUNC on every input instead of the code it is meant to reach.
inline void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// The fds chunks carry: one pipe end and one socket end, each sent as many times as the chunk
// asks (the kernel installs a fresh descriptor per entry of SCM_RIGHTS, so the sender needs
// no copies of its own and cannot leak them). Made once and kept for the whole run.
class FdSource {
 public:
  FdSource() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) __builtin_trap();
    pipe_read_.reset(p[0]);
    pipe_write_.reset(p[1]);
    auto pair = make_socket_pair();
    if (!pair.ok()) __builtin_trap();
    socket_a_ = std::move(pair.value.first);
    socket_b_ = std::move(pair.value.second);
  }
  [[nodiscard]] int pick(std::uint8_t flags) const {
    return (flags & kSocketFds) != 0 ? socket_a_.get() : pipe_read_.get();
  }

 private:
  UniqueFd pipe_read_, pipe_write_, socket_a_, socket_b_;
};

enum class SendResult { sent, would_block, closed };

// One sendmsg of `bytes` with `fd_count` copies of `fd`, non-blocking. `sent` tells how many
// bytes went (a stream socket may take part of them; the fds go with the first byte).
inline SendResult send_chunk(int socket, std::span<const std::byte> bytes, int fd, std::size_t fd_count,
                             std::size_t& sent) {
  sent = 0;
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerChunk)];
  if (fd_count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
    auto* fds = reinterpret_cast<int*>(CMSG_DATA(cmsg));
    for (std::size_t i = 0; i < fd_count; ++i) std::memcpy(fds + i, &fd, sizeof fd);
  }
  for (;;) {
    ssize_t n = ::sendmsg(socket, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      sent = static_cast<std::size_t>(n);
      return SendResult::sent;
    }
    if (errno == EINTR) continue;
    // ETOOMANYREFS: too many fds in flight for this user; like a full socket, the receiver
    // reading is what frees room.
    if (errno == EAGAIN || errno == ETOOMANYREFS) return SendResult::would_block;
    return SendResult::closed;  // EPIPE, ECONNRESET: the receiver is gone
  }
}

// Sends every chunk in turn, calling `drain()` when the receiver must read (the chunk asks,
// or the socket is full) and `drain()` again at the end. `drain()` returns false once the
// receiver has stopped reading for good; sending stops then. Returns the bytes delivered, in
// order, so a target can check what the receiver made of them.
template <class Drain>
std::vector<std::byte> send_chunks(int socket, std::span<const Chunk> chunks, const FdSource& source,
                                   Drain&& drain) {
  std::vector<std::byte> delivered;
  std::size_t fds_left = kMaxFdsPerInput;
  bool receiving = true;
  for (const Chunk& chunk : chunks) {
    if (!receiving) break;
    std::size_t fds = std::min(chunk.fds, fds_left);
    std::span<const std::byte> rest = chunk.bytes;
    // An empty chunk carries no fds (a stream socket needs a byte to attach them to).
    // Bounded: every pass sends a byte or drains; two idle passes in a row give up.
    for (int idle = 0; !rest.empty() && idle < 2;) {
      std::size_t sent = 0;
      SendResult r = send_chunk(socket, rest, source.pick(chunk.flags), fds, sent);
      if (r == SendResult::closed) return delivered;
      if (r == SendResult::sent && sent > 0) {
        if (fds > 0) fds_left -= fds;
        fds = 0;  // delivered with the first byte: the rest goes without them
        delivered.insert(delivered.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(sent));
        rest = rest.subspan(sent);
        idle = 0;
        continue;
      }
      ++idle;
      if (!drain()) {
        receiving = false;
        break;
      }
    }
    if (!rest.empty()) break;  // the receiver never made room: what follows would be out of order
    if ((chunk.flags & kDrainAfter) != 0 && receiving && !drain()) receiving = false;
  }
  if (receiving) drain();
  return delivered;
}

}  // namespace parker::fuzz
