// Write-through: bytes an owner (or a keep-alive rule) asks parker to write to a parked
// connection, without waking it (docs/PROTOCOL.md, "1.1: write-through").
//
// Parker never blocks and never keeps a queue per socket: it writes what the socket takes
// now (send with MSG_DONTWAIT | MSG_NOSIGNAL, EINTR retried) and, when the socket cannot
// take everything, the pool wakes the connection (WAKE_UNSENT, reason write_blocked) with
// the rest in the record's `unsent`, which the owner writes before anything else. So a
// parked connection holds no write state at all, and per-connection order is that of the
// WRITE frames: a later WRITE to the same id finds it woken and is reported not_parked.
#pragma once

#include <cstddef>
#include <string_view>

namespace parker::daemon {

struct WriteOutcome {
  std::size_t sent = 0;   // bytes the socket took
  bool peer_gone = false;  // EPIPE, ECONNRESET, ...: the readiness set reports the hang-up
};

// Writes as much of `bytes` as `fd` takes without blocking. A dead peer is not an error
// here: what it will never read does not matter, and its hang-up is reported as usual.
[[nodiscard]] WriteOutcome write_nonblocking(int fd, std::string_view bytes) noexcept;

}  // namespace parker::daemon
