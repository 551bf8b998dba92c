// Summaries of measured samples: medians with min–max over repetitions, and latency
// percentiles. Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <vector>

namespace parker::bench {

// What the report shows for one figure: the median of the repetitions and their spread.
struct Summary {
  double median = 0;
  double min = 0;
  double max = 0;
  std::size_t count = 0;  // repetitions (or samples) summarised; 0 means "no data"
};

[[nodiscard]] Summary summarize(std::vector<double> samples);

// The q-quantile (0..1) of `sorted` (ascending), nearest-rank; 0 for an empty vector.
[[nodiscard]] double quantile_of_sorted(const std::vector<double>& sorted, double q);

// Element-wise a[i] / b[i] for repetitions measured pairwise in the same run (so a ratio
// compares runs that saw the same machine noise). Sizes must match; zero divisors skipped.
[[nodiscard]] std::vector<double> pairwise_ratios(const std::vector<double>& a,
                                                  const std::vector<double>& b);

// At most `points` (x, cumulative fraction) pairs describing the distribution of `sorted`,
// for CDF plots.
[[nodiscard]] std::vector<std::pair<double, double>> cdf_points(const std::vector<double>& sorted,
                                                                std::size_t points = 200);

}  // namespace parker::bench
