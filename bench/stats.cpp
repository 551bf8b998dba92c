#include "stats.hpp"

#include <algorithm>
#include <cmath>

namespace parker::bench {

Summary summarize(std::vector<double> samples) {
  Summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  s.min = samples.front();
  s.max = samples.back();
  std::size_t mid = samples.size() / 2;
  s.median = samples.size() % 2 == 1 ? samples[mid] : (samples[mid - 1] + samples[mid]) / 2;
  return s;
}

double quantile_of_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

std::vector<double> pairwise_ratios(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out;
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != 0) out.push_back(a[i] / b[i]);
  }
  return out;
}

std::vector<std::pair<double, double>> cdf_points(const std::vector<double>& sorted,
                                                  std::size_t points) {
  std::vector<std::pair<double, double>> out;
  if (sorted.empty() || points < 2) return out;
  double n = static_cast<double>(sorted.size());
  std::size_t steps = std::min(points, sorted.size());
  out.reserve(steps + 1);
  for (std::size_t i = 0; i < steps; ++i) {
    // Spread the points evenly over ranks, then add the tail so p99.9 and max show.
    std::size_t index = i * (sorted.size() - 1) / (steps - 1);
    out.emplace_back(sorted[index], static_cast<double>(index + 1) / n);
  }
  for (double q : {0.99, 0.999}) {
    std::size_t index = static_cast<std::size_t>(q * (n - 1));
    out.emplace_back(sorted[index], static_cast<double>(index + 1) / n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace parker::bench
