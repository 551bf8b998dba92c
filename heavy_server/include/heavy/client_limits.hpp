// ClientLimits: the per-client limits an operator knows from redis, with redis' meanings.
//
//   timeout SECONDS                 close a client idle that long (0: never); subscribers are
//                                   exempt, as in redis. Parked clients too: parker closes
//                                   them at the deadline they were parked with.
//   client-query-buffer-limit N     a client whose unparsed input grows past N bytes is closed
//   client-output-buffer-limit CLASS HARD SOFT SECONDS
//                                   CLASS normal or pubsub (a client with subscriptions): closed
//                                   at once past HARD bytes of unsent output, or when past SOFT
//                                   for SECONDS in a row; 0 turns a limit off.
//
// Pure: parsing and formatting, used by the command line and by CONFIG GET.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace heavy {

struct OutputBufferLimit {
  std::size_t hard_bytes = 0;
  std::size_t soft_bytes = 0;
  std::uint64_t soft_seconds = 0;
  friend bool operator==(const OutputBufferLimit&, const OutputBufferLimit&) = default;
};

struct ClientLimits {
  std::uint64_t timeout_seconds = 0;
  std::size_t query_buffer_bytes = 128 * 1024 * 1024;          // redis: 1 GiB
  OutputBufferLimit normal{0, 0, 0};                           // redis' defaults
  OutputBufferLimit pubsub{32 * 1024 * 1024, 8 * 1024 * 1024, 60};
};

// A size as redis reads one: digits, then optionally b, k, kb, m, mb, g, gb (any case; k is
// 1000, kb 1024). nullopt when malformed or out of range.
[[nodiscard]] std::optional<std::size_t> parse_memory(std::string_view text);

// "normal 0 0 0" or "pubsub 32mb 8mb 60" into `limits`; empty on success, else why not.
[[nodiscard]] std::string apply_output_limit(std::string_view spec, ClientLimits& limits);

// CONFIG GET client-output-buffer-limit: "normal 0 0 0 slave 268435456 67108864 60 pubsub ..."
// (the replica class is redis' default; heavy_server has no replicas).
[[nodiscard]] std::string format_output_limits(const ClientLimits& limits);

}  // namespace heavy
