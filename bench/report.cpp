#include "report.hpp"

#include <cmath>

#include <fmt/format.h>

namespace parker::bench {

const char* to_string(Status status) noexcept {
  switch (status) {
    case Status::ok: return "ok";
    case Status::skipped: return "skipped";
    case Status::failed: return "failed";
  }
  return "?";
}

ScenarioReport::ScenarioReport(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)) {}

Summary ScenarioReport::add(std::string metric, Labels labels, std::string unit,
                                  std::vector<double> samples) {
  Figure f{std::move(metric), std::move(labels), std::move(unit), std::move(samples), {}};
  f.summary = summarize(f.samples);
  figures_.push_back(std::move(f));
  return figures_.back().summary;
}

void ScenarioReport::param(std::string key, std::string value) {
  params_.emplace_back(std::move(key), std::move(value));
}

void ScenarioReport::note(std::string text) { notes_.push_back(std::move(text)); }

void ScenarioReport::skip_part(std::string part, std::string reason) {
  skipped_parts_.emplace_back(std::move(part), std::move(reason));
}

void ScenarioReport::skip(std::string reason) {
  status_ = Status::skipped;
  reason_ = std::move(reason);
}

void ScenarioReport::fail(std::string reason) {
  status_ = Status::failed;
  reason_ = std::move(reason);
}

void ScenarioReport::add_plot(PlotSpec plot) { plots_.push_back(std::move(plot)); }

const Figure* ScenarioReport::find(const std::string& metric, const Labels& labels) const {
  for (const auto& f : figures_) {
    if (f.metric == metric && f.labels == labels) return &f;
  }
  return nullptr;
}

std::string labels_text(const Labels& labels, const char* separator) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += separator;
    out += k + "=" + v;
  }
  return out;
}

namespace {

std::string si(double v) {
  double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.0f}k", v / 1e3);
  if (a >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.3g}", v);
}

}  // namespace

std::string format_value(double value, const std::string& unit) {
  if (!std::isfinite(value)) return "n/a";
  if (unit == "fd/s" || unit == "req/s" || unit == "msg/s" || unit == "conn/s") return si(value);
  if (unit == "us") {
    if (std::fabs(value) >= 1000) return fmt::format("{:.2f} ms", value / 1000);
    return fmt::format("{:.1f} µs", value);
  }
  if (unit == "B") {
    double a = std::fabs(value);
    if (a >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", value / (1024.0 * 1024 * 1024));
    if (a >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", value / (1024.0 * 1024));
    if (a >= 1024.0) return fmt::format("{:.2f} KiB", value / 1024.0);
    return fmt::format("{:.0f} B", value);
  }
  if (unit == "x") return fmt::format("{:.2f}×", value);
  if (unit == "s") return fmt::format("{:.3f} s", value);
  if (unit == "ms") return fmt::format("{:.1f} ms", value);
  if (unit == "%") return fmt::format("{:.2f} %", value);
  if (unit == "count") return fmt::format("{:.0f}", value);
  return fmt::format("{:.4g}", value);
}

}  // namespace parker::bench
