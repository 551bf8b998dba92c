#include "histogram.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
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

namespace {
std::string bucket_name(std::string_view name, std::size_t i, const std::vector<double>& bounds) {
  return i < bounds.size() ? fmt::format("{}_bucket{{le=\"{}\"}}", name, bounds[i])
                           : fmt::format("{}_bucket{{le=\"+Inf\"}}", name);
}
}  // namespace

void Histogram::export_values(std::string_view name, std::vector<protocol::CounterValue>& out) const {
  using protocol::CounterKind;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    cumulative += counts_[i];
    out.push_back({bucket_name(name, i, bounds_), CounterKind::count, cumulative});
  }
  out.push_back({fmt::format("{}_sum", name), CounterKind::real, std::bit_cast<std::uint64_t>(sum_)});
  out.push_back({fmt::format("{}_count", name), CounterKind::count, count_});
}

bool Histogram::import_values(std::string_view name, std::map<std::string, protocol::CounterValue>& values) {
  using protocol::CounterKind;
  std::vector<std::map<std::string, protocol::CounterValue>::iterator> used;
  auto find = [&](const std::string& series, CounterKind kind) {
    auto it = values.find(series);
    if (it == values.end() || it->second.kind != kind) return false;
    used.push_back(it);
    return true;
  };
  std::vector<std::uint64_t> added(counts_.size(), 0);
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (!find(bucket_name(name, i, bounds_), CounterKind::count)) return false;
    std::uint64_t cumulative = used.back()->second.value;
    if (cumulative < previous) return false;
    added[i] = cumulative - previous;
    previous = cumulative;
  }
  if (!find(fmt::format("{}_sum", name), CounterKind::real)) return false;
  const double sum = std::bit_cast<double>(used.back()->second.value);
  if (!find(fmt::format("{}_count", name), CounterKind::count)) return false;
  if (used.back()->second.value != previous || !(sum >= 0)) return false;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += added[i];
  sum_ += sum;
  count_ += previous;
  for (auto it : used) values.erase(it);
  return true;
}

}  // namespace parker::daemon
