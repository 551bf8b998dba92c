// Session blobs: a Session as a small, versioned, little-endian byte string — the opaque state
// parker keeps with a parked connection and hands back on wake, possibly to a newer process.
//
// Layout of version 1 (all integers little-endian; str = u32 length + bytes):
//   "HVSS"  magic (4 bytes)
//   u16     version (1)
//   u16     flags: bit 0 in_multi, bit 1 multi_failed; other bits must be 0
//   u64     id
//   u8      db (0..15)
//   str     name
//   u64 ×4  counters: created_unix_ms, commands, parks, wakes
//   u32     channel count, then that many str (strictly ascending, no duplicates)
//   u32     queued command count, then for each: u32 argc (≥ 1), then argc × str
//   u32     FNV-1a 32-bit checksum of every byte before it
//
// Version 2 (written now; version 1 blobs from an older process are still read) adds, after
// the queued commands and before the checksum:
//   u32     pattern count, then that many str (strictly ascending, no duplicates)
//   str     unparsed input (bytes read from the client, not yet parsed)
//   str     unsent output (replies not yet sent to the client)
//
// Decoding never trusts a length: every count is checked against the bytes that remain before
// anything is allocated, so garbage gives an error, never a crash or a huge allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "heavy/session.hpp"

namespace heavy {

inline constexpr std::uint16_t kSessionBlobVersion = 2;

// Serialises `session`. Fails (nullopt) when the blob would exceed `max_bytes`: such a session
// (a huge MULTI queue, thousands of channels) is simply not parked.
[[nodiscard]] std::optional<std::vector<std::byte>> encode_session(const Session& session,
                                                                   std::size_t max_bytes = SIZE_MAX);

struct SessionDecodeResult {
  std::optional<Session> session;
  std::string_view error;  // empty on success; a static description otherwise
};

[[nodiscard]] SessionDecodeResult decode_session(std::span<const std::byte> blob);

}  // namespace heavy
