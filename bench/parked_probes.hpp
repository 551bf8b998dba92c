// Probing a ParkingBackend (parking_backend.hpp): a few live and a few parked connections,
// each sent one byte whose echo is timed (latency_probe.hpp). Shared by wake_latency and
// ack_cost.
//
// Live and parked probes alternate (their order swapping every pair), so both see the same
// machine. Before a parked probe is sent the harness waits until the backend reports every
// probe parked again: each measured request really is the first one on a parked connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "parker/unique_fd.hpp"
#include "parking_backend.hpp"

namespace parker::bench {

class Progress;

// Waits until `backend` holds `count` parked connections; throws after `timeout`.
void wait_parked(const ParkingBackend& backend, std::uint64_t count, std::chrono::milliseconds timeout);

struct Probes {
  std::vector<UniqueFd> live;
  std::vector<UniqueFd> parked;
};
// `count` live and `count` parked probe connections, once the parked ones are parked
// (`already_parked` other connections are parked at the backend).
[[nodiscard]] Probes open_probes(const ParkingBackend& backend, std::size_t count, std::uint64_t already_parked = 0);

struct ProbeSamples {
  std::vector<double> live;    // µs, in the order measured
  std::vector<double> parked;
};
// `count` live and `count` parked round trips, alternating, each after `pause`; the backend
// holds `expected_parked` connections (probes included) whenever a parked probe is sent.
// `progress` (may be null) advances once per pair.
[[nodiscard]] ProbeSamples measure_probes(const ParkingBackend& backend, Probes& probes, std::uint64_t expected_parked,
                                          std::size_t count, std::chrono::microseconds pause, Progress* progress);

}  // namespace parker::bench
