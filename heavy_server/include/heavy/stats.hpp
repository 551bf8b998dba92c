// Counters INFO reports. Plain structs: the server and the parking code update them, the
// engine reads them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "heavy/client_limits.hpp"

namespace heavy {

// Filled in by the parking integration; zeros until then, but INFO already shows them so the
// fields never change shape.
struct ParkingStats {
  std::uint64_t parked_connections = 0;  // gauge: connections parked right now
  std::uint64_t parks_total = 0;
  std::uint64_t wakes_total = 0;
  std::uint64_t park_failures_total = 0;
  // Protocol 1.1 write-through and keep-alive rules
  std::uint64_t write_through_messages_total = 0;  // messages parker wrote to parked subscribers (one per client)
  std::uint64_t write_through_bytes_total = 0;     // their bytes
  std::uint64_t write_through_returned_total = 0;  // messages parker could not write (delivered here on wake)
  std::uint64_t keepalive_parks_total = 0;         // parks with a keep-alive rule set (PING answered by parker)
  // One per --parker, in order (INFO parking: shard0, shard1...).
  struct Shard {
    std::string path;
    bool connected = false;
    std::uint64_t parked = 0;  // connections placed on it (parked or in flight)
    std::uint32_t credit = 0;  // parks it would take now
  };
  std::vector<Shard> shards;
};

struct ServerStats {
  std::uint64_t connections_received = 0;
  std::uint64_t commands_processed = 0;
  std::uint64_t rejected_connections = 0;  // refused at accept (out of fds or memory)
  std::uint64_t protocol_errors = 0;
  std::uint64_t timed_out_clients = 0;         // closed by --timeout while served here
  std::uint64_t client_limit_closes = 0;       // closed for the query or output buffer limit
  std::uint64_t active_connections = 0;    // gauge: connections served by this process now
  std::uint64_t subscriber_connections = 0;
  ParkingStats parking;
};

// Facts about the process that INFO server reports.
struct ServerIdentity {
  std::uint16_t tcp_port = 0;
  std::int64_t started_unix_ms = 0;
  std::uint64_t session_bytes = 0;
  ClientLimits client_limits;  // as configured (CONFIG GET shows them)
};

}  // namespace heavy
