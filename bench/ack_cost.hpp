// ack_cost (scenario_ack_cost.cpp): what protocol 1.1's acknowledgements cost, measured as
// 1.0 sessions vs 1.1 sessions through the real parker, in one run. Its two parts:
//   ack_cost_throughput.cpp — the park/wake cycle of owner_cycle.hpp, per session kind;
//   ack_cost_latency.cpp    — wake latency probes (parked_probes.hpp), per session kind.
// The session kinds, in the order of kAckCostOwners:
//   protocol=1.0 owner=raw     RawSession with HELLO minor 0: no ACK, no PARKED
//   protocol=1.1 owner=raw     RawSession with minor 1: the same code, batched ACKs, PARKED
//   protocol=1.1 owner=client  parker::Client (negotiates 1.1; it cannot offer 1.0 yet)
// Ratios are per repetition, against protocol=1.0 owner=raw measured next to it.
#pragma once

#include <array>

#include "config.hpp"
#include "report.hpp"

namespace parker::bench {

struct AckCostOwner {
  const char* protocol;
  const char* owner;
};
inline constexpr std::array<AckCostOwner, 3> kAckCostOwners{{{"1.0", "raw"}, {"1.1", "raw"}, {"1.1", "client"}}};

// {"protocol", p}, {"owner", o}, then `more`.
[[nodiscard]] Labels ack_cost_labels(const AckCostOwner& owner, Labels more = {});

void measure_ack_cost_throughput(const Config& config, ScenarioReport& report);
void measure_ack_cost_latency(const Config& config, ScenarioReport& report);

}  // namespace parker::bench
