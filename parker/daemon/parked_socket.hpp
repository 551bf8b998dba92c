// ParkedSocket: the record of one parked client connection — its id, blob, deadline, flags
// and pool. Its fd is not in it: records live in the ParkedTable (parked_table.hpp) at the
// slot of their fd, and the table owns that fd.
//
// 32 bytes, so that with its share of the pool's id index (parked_index.hpp) and of the
// deadline heap a parked connection costs parker well under 64 bytes beyond its blob. No
// libuv handle and no timer per connection (one SocketWatcher and one deadline timer serve
// all), no allocation at all when the blob is empty; a blob is one slot [u32 size][bytes] of the
// BlobSlab (blob_slab.hpp).
//
// Ownership: from the moment it is parked until it is retired the table owns the fd; then
// it leaves the SocketWatcher first, and the fd either moves into a WAKE record (and on
// into an OutputQueue) or is closed; the record is then erased.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "blob_slab.hpp"

namespace parker::daemon {

struct ParkedSocket {
  enum Flag : std::uint8_t {
    wake_on_deadline = 0x01,  // same bits as protocol::kWakeOnDeadline / kWakeOnHangup
    wake_on_hangup = 0x02,
  };

  std::uint64_t id;
  BlobPtr blob;  // [u32 size][size bytes] in the BlobSlab; null when empty
  // uv_now() milliseconds (libuv's monotonic clock counts from boot: 39 bits last 17 years of
  // uptime); 0 = none.
  std::uint64_t deadline : 39 = 0;
  std::uint64_t flags : 8 = 0;    // park flags; the high nibble is the keep-alive rule set
  std::uint64_t partial : 1 = 0;  // a keep-alive request is partly there (see Pool::keepalive)
  std::uint64_t pool : 16;        // its Pool's number in the ParkedTable
  std::uint32_t index = 0xffffffffu;  // position in the deadline heap, or kNotInHeap
  std::uint32_t parked_at = 0;        // uv_now() / 10 (centiseconds, wrapping: 497 days)

  ParkedSocket(std::uint64_t id_, std::uint16_t pool_) noexcept : id(id_), pool(pool_) {}
  ParkedSocket(const ParkedSocket&) = delete;
  ParkedSocket& operator=(const ParkedSocket&) = delete;

  void set_blob(std::string_view bytes);
  [[nodiscard]] std::string_view blob_view() const noexcept;
  [[nodiscard]] std::uint32_t blob_size() const noexcept;

  static constexpr std::uint64_t kMaxDeadline = (std::uint64_t{1} << 39) - 1;
  [[nodiscard]] static std::uint32_t centiseconds(std::uint64_t now_ms) noexcept {
    return static_cast<std::uint32_t>(now_ms / 10);
  }
  // Seconds since it was parked (right for anything parked less than 497 days).
  [[nodiscard]] double seconds_parked(std::uint64_t now_ms) const noexcept {
    return static_cast<double>(static_cast<std::uint32_t>(centiseconds(now_ms) - parked_at)) / 100.0;
  }
};
static_assert(sizeof(ParkedSocket) == 32, "the memory budget of a parked connection (see above)");

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
