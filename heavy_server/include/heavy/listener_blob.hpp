// The state blob a graceful restart parks the listening socket with: which connections the
// old process left parked, so the new one can index them (and count parked subscribers in
// PUBLISH) without waiting for each to speak.
//
// Layout (little-endian): "HVLS" | u16 version (1) | u32 count | count × u64 entry, where an
// entry is a client id with bit 63 set when that client is subscribed to something.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace heavy {

struct ParkedClientRef {
  std::uint64_t id = 0;
  bool subscriber = false;
  friend bool operator==(const ParkedClientRef&, const ParkedClientRef&) = default;
};

// Encodes as many of `clients` as fit in `max_bytes` (subscribers should come first: they
// matter most to the next process). Ids must be below 2^63.
[[nodiscard]] std::string encode_listener_blob(std::span<const ParkedClientRef> clients, std::size_t max_bytes);
// nullopt for anything that is not a well-formed listener blob.
[[nodiscard]] std::optional<std::vector<ParkedClientRef>> decode_listener_blob(std::string_view blob);

}  // namespace heavy
