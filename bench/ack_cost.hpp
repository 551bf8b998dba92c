// ack_cost (scenario_ack_cost.cpp): what protocol 1.1's acknowledgements cost, measured as
// 1.0 sessions vs 1.1 sessions through the real parker, in one run. Its two parts:
//   ack_cost_throughput.cpp — the park/wake cycle of owner_cycle.hpp, per session kind;
//   ack_cost_latency.cpp    — wake latency probes (parked_probes.hpp), per session kind.
// The session kinds, in the order of kAckCostOwners:
//   protocol=1.0 owner=raw     RawSession with HELLO minor 0: no ACK, no PARKED
//   protocol=1.1 owner=raw     RawSession with minor 1: the same code, batched ACKs, PARKED
//   protocol=1.0 owner=client  parker::Client with ClientOptions::max_minor = 0
//   protocol=1.1 owner=client  parker::Client as programs use it (1.1)
// Ratios are per repetition, each 1.1 kind against the 1.0 kind of the same owner code
// measured next to it: what the acknowledgements cost, not what the library costs.
#pragma once

#include <array>
#include <cstddef>

#include "config.hpp"
#include "report.hpp"

namespace parker::bench {

struct AckCostOwner {
  const char* protocol;
  const char* owner;
};
inline constexpr std::array<AckCostOwner, 4> kAckCostOwners{
    {{"1.0", "raw"}, {"1.1", "raw"}, {"1.0", "client"}, {"1.1", "client"}}};
inline constexpr std::size_t kAckCostKinds = kAckCostOwners.size();
// The 1.0 kind a 1.1 kind is compared with (the same owner code); odd indexes are 1.1.
[[nodiscard]] constexpr std::size_t ack_cost_baseline(std::size_t kind) { return kind & ~std::size_t{1}; }
[[nodiscard]] constexpr bool ack_cost_is_v11(std::size_t kind) { return (kind & 1) != 0; }

// {"protocol", p}, {"owner", o}, then `more`.
[[nodiscard]] Labels ack_cost_labels(const AckCostOwner& owner, Labels more = {});

void measure_ack_cost_throughput(const Config& config, ScenarioReport& report);
void measure_ack_cost_latency(const Config& config, ScenarioReport& report);

}  // namespace parker::bench
