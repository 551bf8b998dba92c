#include "histogram.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace parker::daemon {

Histogram::Histogram(std::initializer_list<double> bounds) : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

void Histogram::observe(double value) noexcept {
  // The first bucket whose bound is >= value (Prometheus buckets are "less or equal").
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  auto to = std::back_inserter(out);
  fmt::format_to(to, "# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    // {} prints the shortest text that reads back as the same double ("1e-05", "0.25", "60").
    fmt::format_to(to, "{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cumulative);
  }
  cumulative += counts_.back();
  fmt::format_to(to, "{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  fmt::format_to(to, "{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
}

}  // namespace parker::daemon
