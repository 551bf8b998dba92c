// Running redis-benchmark (from redis-tools) and reading its --csv output.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace parker::bench {

struct RedisBenchmarkRow {
  std::string test;  // "PING_INLINE", "PING_MBULK", "SET", "GET"
  double requests_per_second = 0;
  double avg_us = 0;
  double p50_us = 0;
  double p95_us = 0;
  double p99_us = 0;
  double max_us = 0;
};

struct RedisBenchmarkRun {
  std::uint16_t port = 0;
  std::string tests = "get";  // -t
  int clients = 50;           // -c
  long requests = 100000;     // -n
  std::chrono::milliseconds timeout{120000};
  std::filesystem::path stderr_log;
};

// Throws if redis-benchmark is missing, fails, or prints no result rows.
[[nodiscard]] std::vector<RedisBenchmarkRow> run_redis_benchmark(const RedisBenchmarkRun& run);

[[nodiscard]] const RedisBenchmarkRow* find_row(const std::vector<RedisBenchmarkRow>& rows,
                                                const std::string& test);

}  // namespace parker::bench
