// (2) Park and wake throughput through parker: connections parked per second and woken
// per second end to end (owner -> parker -> owner), with batching, and the ratio to the raw
// fd-passing rate of fd_passing_raw.
//
// Needs parker and its client library: until both exist this scenario reports itself as
// skipped, with the reason. What it will do: open M idle loopback connections (IdleClients),
// have a probe owner park them all through parker::client in batches of 1/8/64/253 and time
// until parker confirms every park; then make every client send one byte and time until the
// owner has had every one woken back. Compare fds/s with fd_passing_raw's library figures.
#include <filesystem>

#include "parking_backend.hpp"
#include "scenario.hpp"

namespace parker::bench {

void run_park_wake_throughput(const Config& config, ScenarioReport& report) {
  std::string why;
  if (auto parker = make_parker_backend(config, why); parker == nullptr) {
    report.skip(why);
    return;
  }
  report.skip("park/wake throughput through parker is not written yet");
}

}  // namespace parker::bench
