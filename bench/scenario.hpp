// The scenario interface: one small file per scenario (scenario_<name>.cpp) defines a run
// function; scenario_registry.cpp lists them all in one table, in the order they run.
//
// A run function measures, and records what it found in its ScenarioReport: figures
// (report.add), notes, skipped parts, plots. It may throw std::exception: the runner then
// marks the scenario failed, keeps what was recorded, and goes on with the next one. It must
// stop every process it started (the helpers in processes.hpp do that on destruction).
#pragma once

#include <string_view>
#include <vector>

#include "config.hpp"
#include "report.hpp"

namespace parker::bench {

struct Scenario {
  std::string_view name;     // what --only takes and the results call it
  std::string_view summary;  // one line for --list and the report
  void (*run)(const Config& config, ScenarioReport& report);
};

[[nodiscard]] const std::vector<Scenario>& all_scenarios();

// The run functions, one per scenario_<name>.cpp.
void run_fd_passing_raw(const Config& config, ScenarioReport& report);
void run_park_wake_throughput(const Config& config, ScenarioReport& report);
void run_idle_scale(const Config& config, ScenarioReport& report);
void run_wake_latency(const Config& config, ScenarioReport& report);
void run_proxy_nutcracker(const Config& config, ScenarioReport& report);
void run_idle_cost(const Config& config, ScenarioReport& report);
void run_server_speed(const Config& config, ScenarioReport& report);
void run_ack_cost(const Config& config, ScenarioReport& report);
void run_restart(const Config& config, ScenarioReport& report);
void run_handover(const Config& config, ScenarioReport& report);
void run_parked_memory(const Config& config, ScenarioReport& report);
void run_fanout(const Config& config, ScenarioReport& report);
void run_keeper_cost(const Config& config, ScenarioReport& report);
void run_shards(const Config& config, ScenarioReport& report);
void run_late_close(const Config& config, ScenarioReport& report);

}  // namespace parker::bench
