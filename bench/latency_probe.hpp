// Request/response round trips on loopback TCP, measured from the client side.
#pragma once

#include <chrono>
#include <vector>

namespace parker::bench {

// Sets send/receive timeouts on a blocking socket, so a probe can never hang.
void set_io_timeouts(int fd, std::chrono::milliseconds timeout);

// Sends one byte and waits for the one-byte reply; microseconds. Throws on error/timeout.
[[nodiscard]] double round_trip_us(int fd);

struct Percentiles {
  double p50 = 0;
  double p99 = 0;
  double p999 = 0;
};
// Sorts `samples` in place.
[[nodiscard]] Percentiles percentiles(std::vector<double>& samples);

}  // namespace parker::bench
