// (3) Idle scale: N idle TCP connections held against heavy_server, with parking and
// without: heavy_server RSS, parker RSS, kernel memory per connection (/proc/meminfo slab
// deltas), for N = 1k, 10k and ~19k (--big: 100k and beyond, over several parker-less
// source addresses and client processes — IdleClients already spreads them).
//
// Needs heavy_server with parking, and parker: until both exist it reports itself skipped.
#include <filesystem>

#include "scenario.hpp"
#include "servers.hpp"

namespace parker::bench {

void run_idle_scale(const Config& config, ScenarioReport& report) {
  if (!heavy_server_built(config)) {
    report.skip("heavy_server not built");
    return;
  }
  if (!std::filesystem::exists(config.program("parker"))) {
    report.skip("parker not built");
    return;
  }
  report.skip("idle_scale is not written yet (needs heavy_server's parking flags)");
}

}  // namespace parker::bench
