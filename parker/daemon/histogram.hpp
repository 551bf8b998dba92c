// Histogram: a Prometheus histogram with fixed bucket bounds — cumulative counts, a sum and
// a count — and its text exposition. Observing is O(buckets) with no allocation, so it can
// sit on the wake path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace parker::daemon {

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, ascending; +Inf is added.
  Histogram(std::initializer_list<double> bounds);

  void observe(double value) noexcept;

  // Appends "# HELP", "# TYPE name histogram", the _bucket{le=...} series, _sum and _count.
  void render(std::string& out, std::string_view name, std::string_view help) const;

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace parker::daemon
