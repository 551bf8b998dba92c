// What protocol 1.1's acknowledgements cost: park/wake throughput and wake latency
// through the real parker with 1.0 sessions against 1.1 sessions (batched ACKs, PARKED),
// side by side in one run, with the 1.1/1.0 ratios (ack_cost.hpp: the session kinds; the
// two parts live in ack_cost_throughput.cpp and ack_cost_latency.cpp).
//
// The 1.0 side is the bench's RawSession: the client library always offers 1.1. RawSession
// also speaks 1.1 with the library's rules, so owner=raw compares the two versions with the
// same owner code (the protocol's cost alone), and owner=client shows what the library adds.
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
                           "protocol=1.1 owner=client (parker::Client); one parker each");
  report.param("acks", "cumulative, one per flush after the wakes it covers (the client library's rule)");
  measure_ack_cost_throughput(config, report);
  measure_ack_cost_latency(config, report);
  report.note("*_v11_vs_v10 = the 1.1 figure over the 1.0 one measured next to it, per repetition "
              "(owner=raw: the same owner code on both versions; owner=client: the client library, "
              "which cannot speak 1.0, over the raw 1.0 session). Throughput: above 1 is faster; the "
              "goal for 1.1 is at least 0.90x. Latency: above 1 is slower.");
  report.note("woken/s ends at a barrier answered after the last ACK, so parker's letting go of its "
              "copies is counted on 1.1 as on 1.0; parked/s ends when the recalled last park is back, "
              "after the PARKED frames before it.");
}

}  // namespace parker::bench
