// ack_cost, latency part: the first-request round trip on a parked connection (and on a
// live one, for scale), as in wake_latency, through one parker per session kind
// (ack_cost.hpp). The four backends run side by side, each with N idle connections parked;
// every repetition measures them one after the other, their order rotating, so 1.0 and 1.1
// are compared at the same moment of the machine. On 1.1 a wake's fd stays parker's until
// the ACK that the probe server's next flush sends (just before it parks the connection
// again), and every park is answered with PARKED: what that adds to a wake shows here.
#include <iterator>
#include <map>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "ack_cost.hpp"
#include "idle_clients.hpp"
#include "latency_probe.hpp"
#include "parked_probes.hpp"
#include "parking_backend.hpp"
#include "progress.hpp"

namespace parker::bench {
namespace {

constexpr std::size_t kProbes = 8;  // of each kind, used round-robin
// In the order of kAckCostOwners.
constexpr ParkerOwner kBackendOwners[] = {ParkerOwner::raw_1_0, ParkerOwner::raw_1_1, ParkerOwner::client_1_0,
                                          ParkerOwner::client};
static_assert(std::size(kBackendOwners) == kAckCostKinds);

struct PauseSetting {
  const char* label;
  std::chrono::microseconds pause;  // before every probe
};
constexpr PauseSetting kSettings[] = {{"busy", std::chrono::microseconds(0)},
                                      {"idle", std::chrono::microseconds(100)}};

struct Side {
  std::unique_ptr<ParkingBackend> backend;
  Probes probes;
  IdleClients idle;
};

}  // namespace

void measure_ack_cost_latency(const Config& config, ScenarioReport& report) {
  const std::size_t n = config.pick<std::size_t>(100, 1000, 1000);
  const std::size_t samples = config.pick<std::size_t>(200, 1500, 4000);
  const int reps = config.reps(2, 5);
  report.param("latency_parked_others", std::to_string(n));
  report.param("latency_samples_per_repetition", std::to_string(samples));
  report.param("latency_repetitions", std::to_string(reps));

  std::vector<std::unique_ptr<Side>> sides;
  for (ParkerOwner owner : kBackendOwners) {
    std::string why;
    auto side = std::make_unique<Side>();
    side->backend = make_parker_backend(config, why, owner);
    if (!side->backend) {
      report.skip_part("latency", why);
      return;
    }
    side->backend->start(config);
    side->probes = open_probes(*side->backend, kProbes);
    Progress connecting(fmt::format("ack_cost {}: parking {} idle", side->backend->name(), n), n);
    side->idle.open("127.0.0.1", side->backend->park_port(), n, 120s, &connecting);
    wait_parked(*side->backend, n + kProbes, 60s);
    sides.push_back(std::move(side));
  }

  // [kind][setting][figure] -> one value per repetition
  std::map<std::string, std::vector<double>> figures[kAckCostKinds][2];
  Progress measuring("ack_cost: wake latency", samples * kAckCostKinds * 2 * static_cast<std::size_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t s = 0; s < 2; ++s) {
      for (std::size_t i = 0; i < kAckCostKinds; ++i) {
        const std::size_t k = (i + static_cast<std::size_t>(rep)) % kAckCostKinds;  // who goes first rotates
        Side& side = *sides[k];
        ProbeSamples got = measure_probes(*side.backend, side.probes, n + kProbes, samples, kSettings[s].pause, &measuring);
        Percentiles l = percentiles(got.live), p = percentiles(got.parked);
        auto& f = figures[k][s];
        f["live.p50"].push_back(l.p50);
        f["live.p99"].push_back(l.p99);
        f["parked.p50"].push_back(p.p50);
        f["parked.p99"].push_back(p.p99);
        f["added_p50"].push_back(p.p50 - l.p50);
      }
    }
  }
  measuring.finish();

  for (std::size_t s = 0; s < 2; ++s) {
    const char* before = kSettings[s].label;
    for (std::size_t k = 0; k < kAckCostKinds; ++k) {
      const auto& o = kAckCostOwners[k];
      for (const char* mode : {"parked", "live"}) {
        for (const char* q : {"p50", "p99"}) {
          report.add(fmt::format("rtt_{}", q), ack_cost_labels(o, {{"before", before}, {"probe", mode}}), "us",
                     figures[k][s][fmt::format("{}.{}", mode, q)]);
        }
      }
      report.add("wake_added_p50", ack_cost_labels(o, {{"before", before}}), "us", figures[k][s]["added_p50"]);
    }
    for (std::size_t k = 0; k < kAckCostKinds; ++k) {
      if (!ack_cost_is_v11(k)) continue;
      Labels labels{{"owner", kAckCostOwners[k].owner}, {"before", before}};
      for (const char* q : {"p50", "p99"}) {
        const std::string key = fmt::format("parked.{}", q);
        report.add(fmt::format("parked_{}_v11_vs_v10", q), labels, "x",
                   pairwise_ratios(figures[k][s][key], figures[ack_cost_baseline(k)][s][key]));
      }
    }
  }
  for (auto& side : sides) {
    side->idle.close_all();
    side->backend->stop();
  }
}

}  // namespace parker::bench
