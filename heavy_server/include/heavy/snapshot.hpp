// Snapshots of the keyspace: written on TERM, read at start (--snapshot FILE).
//
// Format, little-endian: "HVSNAP01" magic, u32 version (1), then records — tag 1:
// u8 db, u32 key length, key, u32 value length, value, u64 expiry (unix ms, 0 none) — then tag
// 0xff and a u32 FNV-1a checksum of every byte before it. Expiry is stored as wall-clock time so
// a key set with EX 60 before a restart still expires at the same moment after it.
//
// Writing is atomic: a temporary file in the same directory, fsync, rename over FILE, fsync of
// the directory. A reader never sees half a snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "heavy/keyspace.hpp"

namespace heavy {

// The two clocks a snapshot converts between: the keyspace's monotonic ms and unix ms.
struct SnapshotClock {
  std::int64_t monotonic_ms = 0;
  std::int64_t unix_ms = 0;
};
[[nodiscard]] SnapshotClock snapshot_clock_now(std::int64_t monotonic_ms);

struct SnapshotResult {
  bool ok = false;
  bool missing = false;  // load: no such file (not an error: the first start)
  std::size_t keys = 0;
  std::string error;     // what failed, naming the system call or the defect
};

[[nodiscard]] SnapshotResult save_snapshot(const Keyspace& keyspace, const std::string& path, SnapshotClock clock);
// Loads into `keyspace` (which should be empty). On error the keyspace is left empty.
[[nodiscard]] SnapshotResult load_snapshot(Keyspace& keyspace, const std::string& path, SnapshotClock clock);

}  // namespace heavy
