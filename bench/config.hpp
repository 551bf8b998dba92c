// How big a run is and where it writes: chosen on the command line, read by every scenario.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace parker::bench {

enum class RunSize { quick, standard, big };

struct Config {
  RunSize size = RunSize::standard;
  std::filesystem::path out_dir = "bench-results";
  std::filesystem::path bin_dir;       // where parker, heavy_server... live (next to us)
  std::vector<std::string> only;       // scenario names; empty means all
  std::string proxy_backend = "redis";  // what nutcracker fronts: "redis" or "heavy_server"
  std::vector<std::string> heavy_server_args;  // extra flags for every heavy_server started
  int repetitions = 0;                 // 0: the size's default

  // The value for this run's size.
  template <class T>
  [[nodiscard]] T pick(T quick, T standard, T big) const {
    switch (size) {
      case RunSize::quick: return quick;
      case RunSize::standard: return standard;
      case RunSize::big: return big;
    }
    return standard;
  }
  [[nodiscard]] bool quick() const noexcept { return size == RunSize::quick; }
  [[nodiscard]] int reps(int quick_reps, int standard_reps) const {
    if (repetitions > 0) return repetitions;
    return size == RunSize::quick ? quick_reps : standard_reps;
  }
  // Path of one of the project's programs (build/bin/<name>).
  [[nodiscard]] std::filesystem::path program(const std::string& name) const {
    return bin_dir / name;
  }
};

}  // namespace parker::bench
