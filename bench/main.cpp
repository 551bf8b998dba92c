// parker_bench: measures what parking buys and what it costs (issue 5).
//   parker_bench --quick --out DIR    every scenario at tiny sizes, < 1 minute
//   parker_bench [--big] --out DIR    the default suite (< ~5 min on 2 cores) / large sizes
//   parker_bench --only a,b           chosen scenarios
// Writes DIR/results.json, DIR/results.csv and DIR/*.png, and prints a table.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "outputs.hpp"
#include "processes.hpp"
#include "parker/version.h"
#include "scenario.hpp"

namespace {

using namespace parker::bench;

std::filesystem::path own_directory() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : exe.parent_path();
}

bool write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

void run_one(const Scenario& scenario, const Config& config, ScenarioReport& report) {
  spdlog::info("running {} — {}", scenario.name, scenario.summary);
  double start = now_seconds();
  try {
    scenario.run(config, report);
  } catch (const std::exception& e) {
    report.fail(e.what());
    spdlog::error("{} failed: {}", scenario.name, e.what());
  }
  report.elapsed_seconds = now_seconds() - start;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parker_bench — what parking buys and what it costs, against the kernel's limit "
               "and the alternatives. Writes results.json, results.csv and PNG plots."};
  app.set_version_flag("--version", "parker_bench " PARKER_VERSION, "Print the version and exit");
  bool quick = false, big = false, list = false;
  std::vector<std::string> only;
  Config config;
  std::string out_dir = "bench-results";
  app.add_flag("--quick", quick, "every scenario at tiny sizes (smoke run, under a minute)");
  app.add_flag("--big", big, "add the large sizes (long)")->excludes(app.get_option("--quick"));
  app.add_option("--out", out_dir, "results directory (created if missing)");
  app.add_option("--only", only, "run only these scenarios (comma separated)")->delimiter(',');
  app.add_option("--reps", config.repetitions, "repetitions per measurement (default: 2 quick, 5 otherwise)")
      ->check(CLI::Range(1, 100));
  app.add_option("--proxy-backend", config.proxy_backend, "what nutcracker fronts")
      ->check(CLI::IsMember({"redis", "heavy_server"}));
  app.add_option("--heavy-server-arg", config.heavy_server_args,
                 "extra flag for every heavy_server started (repeat for several)")
      ->allow_extra_args(false);
  app.add_flag("--list", list, "list the scenarios and exit");
  CLI11_PARSE(app, argc, argv);

  const auto& scenarios = all_scenarios();
  if (list) {
    for (const auto& s : scenarios) fmt::print("{:<22} {}\n", s.name, s.summary);
    return 0;
  }
  for (const auto& name : only) {
    bool known = std::any_of(scenarios.begin(), scenarios.end(), [&](const Scenario& s) { return s.name == name; });
    if (!known) {
      std::string names;
      for (const auto& s : scenarios) names += fmt::format(" {}", s.name);
      fmt::print(stderr, "--only: unknown scenario '{}'; known:{}\n", name, names);
      return 2;
    }
  }

  ::signal(SIGPIPE, SIG_IGN);  // a peer that died gives EPIPE, not a dead harness
  spdlog::set_default_logger(spdlog::default_logger());
  spdlog::set_pattern("[%H:%M:%S.%e] %^%l%$ %v");
  config.size = quick ? RunSize::quick : big ? RunSize::big : RunSize::standard;
  config.only = only;
  config.out_dir = out_dir;
  config.bin_dir = own_directory();
  std::error_code ec;
  std::filesystem::create_directories(config.out_dir, ec);
  if (ec) {
    fmt::print(stderr, "cannot create {}: {}\n", out_dir, ec.message());
    return 2;
  }

  Results results;
  results.machine = describe_machine();
  for (int i = 0; i < argc; ++i) results.command_line += (i > 0 ? " " : "") + std::string(argv[i]);
  if (results.machine.sanitized) spdlog::warn("sanitizer build: timings are not representative");
  fmt::print("parker_bench: {} run, {} cores, {}, results in {}\n",
             quick ? "quick" : big ? "big" : "default", results.machine.cores, results.machine.kernel,
             config.out_dir.string());
  std::fflush(stdout);

  for (const auto& scenario : scenarios) {
    if (!only.empty() && std::find(only.begin(), only.end(), scenario.name) == only.end()) continue;
    results.scenarios.emplace_back(std::string(scenario.name), std::string(scenario.summary));
    run_one(scenario, config, results.scenarios.back());
    print_scenario(results.scenarios.back(), stdout);
    std::fflush(stdout);
  }

  render_plots(results, config.out_dir);
  bool written = write_text(config.out_dir / "results.json", results_json(results)) &&
                 write_text(config.out_dir / "results.csv", results_csv(results));
  fmt::print("\nplots: {}\nresults: {}/results.json, results.csv\n", results.plots_status,
             config.out_dir.string());
  if (!written) {
    spdlog::error("could not write the results into {}", config.out_dir.string());
    return 1;
  }
  bool any_failed = std::any_of(results.scenarios.begin(), results.scenarios.end(),
                                [](const ScenarioReport& s) { return s.status() == Status::failed; });
  return any_failed ? 1 : 0;
}
