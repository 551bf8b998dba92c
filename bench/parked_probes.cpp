#include "parked_probes.hpp"

#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "latency_probe.hpp"
#include "loopback.hpp"
#include "progress.hpp"

namespace parker::bench {

using namespace std::chrono_literals;

void wait_parked(const ParkingBackend& backend, std::uint64_t count, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (backend.parked_count() != count) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error(fmt::format("{}: {} connections parked, expected {}", backend.name(),
                                           backend.parked_count(), count));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

Probes open_probes(const ParkingBackend& backend, std::size_t count, std::uint64_t already_parked) {
  Probes probes;
  for (std::size_t i = 0; i < count; ++i) {
    probes.live.push_back(connect_tcp("127.0.0.1", backend.live_port()));
    probes.parked.push_back(connect_tcp("127.0.0.1", backend.park_port()));
    set_io_timeouts(probes.live.back().get(), 2s);
    set_io_timeouts(probes.parked.back().get(), 2s);
  }
  wait_parked(backend, already_parked + count, 10s);
  return probes;
}

ProbeSamples measure_probes(const ParkingBackend& backend, Probes& probes, std::uint64_t expected_parked,
                            std::size_t count, std::chrono::microseconds pause, Progress* progress) {
  ProbeSamples s;
  s.live.reserve(count);
  s.parked.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // The order alternates: a probe sent right after another finds the processes (and CPUs)
    // awake, which would flatter whichever always came second.
    for (std::size_t k = 0; k < 2; ++k) {
      bool parked_probe = (i + k) % 2 == 0;
      // The previous parked probe must be back with the watcher before this one is sent.
      if (parked_probe) wait_parked(backend, expected_parked, 2s);
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
      if (parked_probe) {
        s.parked.push_back(round_trip_us(probes.parked[i % probes.parked.size()].get()));
      } else {
        s.live.push_back(round_trip_us(probes.live[i % probes.live.size()].get()));
      }
    }
    if (progress != nullptr) progress->advance();
  }
  wait_parked(backend, expected_parked, 2s);
  return s;
}

}  // namespace parker::bench
