// ParkedSocket: one parked client connection — its fd, id, blob, deadline and pool.
//
// Memory budget (blob excluded), what keeps parker far under 256 bytes per parked
// connection: ParkedSocket is 48 bytes; it lives in an unordered_set node (+8: the next
// pointer; the id in the element is the key) = 56 bytes, a 64-byte malloc chunk; + ~8-16
// bytes of bucket array; + 8-16 bytes of deadline heap when it has a deadline. No libuv
// handle and no timer per connection (one SocketWatcher and one deadline timer serve all),
// no second allocation when the blob is empty; a blob is one allocation [u32 size][bytes].
//
// Ownership: the ParkedSocket owns `fd` from the moment it is parked until it is retired —
// then it is removed from the SocketWatcher first, and the fd either moves into a WAKE
// record (and on into an OutputQueue) or is closed; the ParkedSocket is then erased.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "parker/unique_fd.hpp"

namespace parker::daemon {

class Pool;

struct ParkedSocket {
  enum Flag : std::uint8_t {
    wake_on_deadline = 0x01,  // same bits as protocol::kWakeOnDeadline / kWakeOnHangup
    wake_on_hangup = 0x02,
  };

  std::uint64_t id;
  std::uint64_t deadline : 48 = 0;  // uv_now() milliseconds (ample for 8,000 years); 0 = none
  std::uint64_t flags : 8 = 0;      // park flags; the high nibble is the keep-alive rule set
  std::uint64_t partial : 1 = 0;    // a keep-alive request is partly there (see Pool::keepalive)
  std::unique_ptr<std::byte[]> blob;  // [u32 size][size bytes]; null when empty
  Pool* pool;
  std::uint32_t index = 0xffffffffu; // position in the deadline heap, or kNotInHeap
  UniqueFd fd;                       // the parked client socket
  std::uint64_t parked_at = 0;       // uv_now() milliseconds, for the time-parked histogram

  ParkedSocket(std::uint64_t id_, Pool* pool_) noexcept : id(id_), pool(pool_) {}
  ParkedSocket(const ParkedSocket&) = delete;
  ParkedSocket& operator=(const ParkedSocket&) = delete;

  void set_blob(std::string_view bytes);
  [[nodiscard]] std::string_view blob_view() const noexcept;
  [[nodiscard]] std::uint32_t blob_size() const noexcept;
};
// 48 bytes + the node's next pointer = 56: still one 64-byte glibc malloc chunk (56 + 8
// header), so parked_at costs no memory.
static_assert(sizeof(ParkedSocket) <= 48, "keeps a set node in a 64-byte malloc chunk");

// The parked sockets of a pool, found by id. Node-based: an element never moves, which the
// kernel readiness set and the deadline heap point at. The id inside the element is the
// key (no second copy).
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
