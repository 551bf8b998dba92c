#include "redis_benchmark.hpp"

#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "processes.hpp"

namespace parker::bench {
namespace {

// Splits one CSV line of quoted fields: "GET","38461.54","0.797",...
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.push_back(field);
      field.clear();
    } else if (c != '\r') {
      field += c;
    }
  }
  out.push_back(field);
  return out;
}

}  // namespace

std::vector<RedisBenchmarkRow> run_redis_benchmark(const RedisBenchmarkRun& run) {
  auto program = find_in_path("redis-benchmark");
  if (!program) throw std::runtime_error("redis-benchmark not installed (apt install redis-tools)");
  auto result = run_capture({program->string(), "-h", "127.0.0.1", "-p", std::to_string(run.port), "-t", run.tests,
                             "-c", std::to_string(run.clients), "-n", std::to_string(run.requests), "--csv"},
                            run.timeout, run.stderr_log);
  if (result.code != 0) {
    throw std::runtime_error(fmt::format("redis-benchmark -t {} on port {} exited with {}", run.tests, run.port,
                                         result.code));
  }
  std::vector<RedisBenchmarkRow> rows;
  std::istringstream in(result.out);
  std::string line;
  while (std::getline(in, line)) {
    auto f = csv_fields(line);
    if (f.size() < 8 || f[0] == "test") continue;
    try {
      // Latencies come in milliseconds; the report uses microseconds.
      rows.push_back({f[0], std::stod(f[1]), std::stod(f[2]) * 1000, std::stod(f[4]) * 1000,
                      std::stod(f[5]) * 1000, std::stod(f[6]) * 1000, std::stod(f[7]) * 1000});
    } catch (const std::exception&) {
      continue;  // a warning line, not a result
    }
  }
  if (rows.empty()) {
    throw std::runtime_error(fmt::format("redis-benchmark -t {} on port {} printed no results", run.tests, run.port));
  }
  return rows;
}

const RedisBenchmarkRow* find_row(const std::vector<RedisBenchmarkRow>& rows, const std::string& test) {
  for (const auto& r : rows) {
    if (r.test == test) return &r;
  }
  return nullptr;
}

}  // namespace parker::bench
