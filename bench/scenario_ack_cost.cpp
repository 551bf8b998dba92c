// What protocol 1.1's acknowledgements cost: park/wake throughput and wake latency
// through the real parker with 1.0 sessions against 1.1 sessions (batched ACKs, PARKED),
// side by side in one run, with the 1.1/1.0 ratios (ack_cost.hpp: the session kinds; the
// two parts live in ack_cost_throughput.cpp and ack_cost_latency.cpp).
//
// Two owners speak both versions: the bench's RawSession (1.1 with the library's rules), and
// parker::Client itself (ClientOptions::max_minor = 0 for 1.0). Each 1.1 kind is compared
// with the 1.0 kind of the same owner: what the acknowledgements cost, and nothing else.
#include "ack_cost.hpp"
#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {

void run_ack_cost(const Config& config, ScenarioReport& report) {
  if (!parker_built(config)) {
    report.skip("parker not built");
    return;
  }
  report.param("sessions", "protocol=1.0 owner=raw (HELLO minor 0), protocol=1.1 owner=raw, "
                           "protocol=1.0 owner=client (parker::Client, max_minor 0), protocol=1.1 owner=client; "
                           "one parker each");
  report.param("acks", "cumulative, one per flush after the wakes it covers (the client library's rule)");
  measure_ack_cost_throughput(config, report);
  measure_ack_cost_latency(config, report);
  report.note("*_v11_vs_v10 = the 1.1 figure over the 1.0 one measured next to it, per repetition "
              "with the same owner code (owner=raw: RawSession; owner=client: parker::Client). "
              "Throughput: above 1 is faster; the goal for 1.1 is at least 0.90x. Latency: above 1 is slower.");
  report.note("woken/s ends at a barrier answered after the last ACK, so parker's letting go of its "
              "copies is counted on 1.1 as on 1.0; parked/s ends when the recalled last park is back, "
              "after the PARKED frames before it.");
}

}  // namespace parker::bench
