// ParkedSocket: one parked client connection — its fd, its poll watcher, id, blob, deadline.
//
// Memory budget (blob excluded), what makes "< 256 bytes per parked connection" hold:
//   ParkedSocket 200 B (uv_poll_t alone is 160) in an unordered_map node (+16 B: next
//   pointer and key) = 216 B, a 224 B malloc chunk; + ~8-16 B of bucket array; + 8-16 B of
//   deadline heap when it has a deadline. No timer, no separate allocation when the blob
//   is empty.
//
// Ownership: the ParkedSocket owns `fd` from the moment it is parked until it is retired —
// then the fd either moves into a WAKE record (and on into an OutputQueue) or is closed.
// The uv_poll_t is always stopped before that (libuv then removes the fd from epoll), and
// the memory is freed only in the poll handle's close callback (see Pool::retire).
//
// Standard layout with `poll` first, so the poll callback gets back to its ParkedSocket by
// a pointer-interconvertible cast; `poll.data` points at the owning Pool.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace parker::daemon {

class Pool;

struct ParkedSocket {
  enum Flag : std::uint8_t {
    wake_on_deadline = 0x01,  // same bits as protocol::kWakeOnDeadline / kWakeOnHangup
    wake_on_hangup = 0x02,
    was_blocking = 0x04,      // the owner's socket had O_NONBLOCK off: restore it on wake
  };
  enum class State : std::uint8_t { parked, retiring };

  uv_poll_t poll;
  std::uint64_t id = 0;
  std::uint64_t deadline = 0;        // uv_now() milliseconds; 0 = none
  std::byte* blob = nullptr;         // owned (new[]); null when empty
  std::uint32_t blob_size = 0;
  std::uint32_t index = 0xffffffffu; // in the deadline heap while parked; in Pool::retiring_ after
  int fd = -1;
  std::uint8_t flags = 0;
  State state = State::parked;

  ParkedSocket() noexcept : poll{} {}
  ~ParkedSocket() { delete[] blob; }
  ParkedSocket(const ParkedSocket&) = delete;
  ParkedSocket& operator=(const ParkedSocket&) = delete;

  [[nodiscard]] static ParkedSocket& from(uv_poll_t* handle) noexcept {
    return *reinterpret_cast<ParkedSocket*>(handle);
  }
  [[nodiscard]] Pool& pool() const noexcept { return *static_cast<Pool*>(poll.data); }
};
static_assert(std::is_standard_layout_v<ParkedSocket>);
static_assert(offsetof(ParkedSocket, poll) == 0);
static_assert(sizeof(ParkedSocket) <= 200, "keeps a map node in a 224-byte malloc chunk");

// What a readiness event on a parked socket means. Parker never reads the client's bytes:
// it peeks at one (MSG_PEEK), which leaves them for the owner.
enum class SocketEvent {
  readable,  // data waiting (perhaps followed by FIN), or a listener with a pending connection
  hangup,    // the peer closed with nothing left to read, or the socket is not connected
  error,     // the socket reported an error (e.g. ECONNRESET)
  spurious,  // nothing to do (EAGAIN): keep watching
};
[[nodiscard]] SocketEvent probe_socket(int fd) noexcept;

}  // namespace parker::daemon
