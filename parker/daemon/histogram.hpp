// Histogram: a Prometheus histogram with fixed bucket bounds — cumulative counts, a sum and
// a count — and its text exposition. Observing is O(buckets) with no allocation, so it can
// sit on the wake path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "parker/protocol.hpp"

namespace parker::daemon {

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, ascending; +Inf is added.
  Histogram(std::initializer_list<double> bounds);

  void observe(double value) noexcept;

  // Appends "# HELP", "# TYPE name histogram", the _bucket{le=...} series, _sum and _count.
  void render(std::string& out, std::string_view name, std::string_view help) const;

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }

  // Hand-over (COUNTERS): the series as render() names them — cumulative `name_bucket{le=..}`
  // counts, `name_sum` (CounterKind::real) and `name_count`.
  void export_values(std::string_view name, std::vector<protocol::CounterValue>& out) const;
  // Adds a predecessor's series of this histogram, taking them out of `values`. Only all or
  // nothing: if one of this histogram's series is missing or they do not add up (another
  // version with other buckets), nothing is added, nothing is taken and it returns false.
  bool import_values(std::string_view name, std::map<std::string, protocol::CounterValue>& values);

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

}  // namespace parker::daemon
