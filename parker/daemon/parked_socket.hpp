// ParkedSocket: one parked client connection — its fd, its poll watcher, id, blob, deadline.
//
// Memory budget (blob excluded), what keeps parker under 256 bytes per parked connection:
//   ParkedSocket is 192 bytes (uv_poll_t alone is 160); it lives in an unordered_set node
//   (+8: the next pointer; the id is the element's own key) = 200 bytes, a 208-byte malloc
//   chunk; + ~8-16 bytes of bucket array; + 8-16 bytes of deadline heap when it has a
//   deadline; + libuv's per-fd watcher slot (8-16 bytes). No timer per connection, no
//   second allocation when the blob is empty; a blob is one allocation [u32 size][bytes].
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
#include <functional>
#include <string_view>
#include <type_traits>
#include <unordered_set>

namespace parker::daemon {

class Pool;

struct ParkedSocket {
  enum Flag : std::uint8_t {
    wake_on_deadline = 0x01,  // same bits as protocol::kWakeOnDeadline / kWakeOnHangup
    wake_on_hangup = 0x02,
    was_blocking = 0x04,      // the owner's socket had O_NONBLOCK off: restore it on wake
  };
  enum State : std::uint8_t { parked = 0, retiring = 1 };

  uv_poll_t poll;
  std::uint64_t id;
  std::uint64_t deadline : 48 = 0;  // uv_now() milliseconds (ample for 8,000 years); 0 = none
  std::uint64_t flags : 8 = 0;
  std::uint64_t state : 8 = parked;
  std::byte* blob = nullptr;         // owned: [u32 size][size bytes]; null when empty
  std::uint32_t index = 0xffffffffu; // in the deadline heap while parked; in Pool::retiring_ after
  int fd = -1;

  explicit ParkedSocket(std::uint64_t id_) noexcept : poll{}, id(id_) {}
  ~ParkedSocket() { delete[] blob; }
  ParkedSocket(const ParkedSocket&) = delete;
  ParkedSocket& operator=(const ParkedSocket&) = delete;

  void set_blob(std::string_view bytes);
  [[nodiscard]] std::string_view blob_view() const noexcept;
  [[nodiscard]] std::uint32_t blob_size() const noexcept;

  [[nodiscard]] static ParkedSocket& from(uv_poll_t* handle) noexcept {
    return *reinterpret_cast<ParkedSocket*>(handle);
  }
  [[nodiscard]] Pool& pool() const noexcept { return *static_cast<Pool*>(poll.data); }
};
static_assert(std::is_standard_layout_v<ParkedSocket>);
static_assert(offsetof(ParkedSocket, poll) == 0);
static_assert(sizeof(ParkedSocket) <= 192, "keeps a set node in a 208-byte malloc chunk");

// The parked sockets of a pool, found by id. Node-based: an element never moves, which the
// embedded uv_poll_t needs. The id inside the element is the key (no second copy).
struct ParkedHash {
  using is_transparent = void;
  std::size_t operator()(std::uint64_t id) const noexcept { return std::hash<std::uint64_t>{}(id); }
  std::size_t operator()(const ParkedSocket& s) const noexcept { return (*this)(s.id); }
};
struct ParkedEq {
  using is_transparent = void;
  bool operator()(const ParkedSocket& a, const ParkedSocket& b) const noexcept { return a.id == b.id; }
  bool operator()(std::uint64_t a, const ParkedSocket& b) const noexcept { return a == b.id; }
  bool operator()(const ParkedSocket& a, std::uint64_t b) const noexcept { return a.id == b; }
};
using ParkedSet = std::unordered_set<ParkedSocket, ParkedHash, ParkedEq>;

// Set elements are const to protect the key; every field but `id` may change. (The element
// itself was not created const, so writing through this reference is well defined.)
[[nodiscard]] inline ParkedSocket& mutable_element(const ParkedSocket& s) noexcept {
  return const_cast<ParkedSocket&>(s);
}

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
