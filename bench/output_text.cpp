// The terminal table.
#include <algorithm>

#include <fmt/format.h>

#include "outputs.hpp"

namespace parker::bench {

void print_scenario(const ScenarioReport& s, std::FILE* out) {
  fmt::print(out, "\n== {} — {} [{}{}{}] ({:.1f} s)\n", s.name(), s.description(), to_string(s.status()),
             s.reason().empty() ? "" : ": ", s.reason(), s.elapsed_seconds);
  if (!s.figures().empty()) {
    std::size_t metric_width = 6, label_width = 7;
    for (const auto& f : s.figures()) {
      metric_width = std::max(metric_width, f.metric.size());
      label_width = std::max(label_width, labels_text(f.labels).size());
    }
    fmt::print(out, "  {:<{}}  {:<{}}  {:>12}  {:<27} {}\n", "figure", metric_width, "variant",
               label_width, "median", "(min – max)", "reps");
    for (const auto& f : s.figures()) {
      const auto& sum = f.summary;
      std::string range = sum.count > 1 ? fmt::format("({} – {})", format_value(sum.min, f.unit),
                                                      format_value(sum.max, f.unit))
                                        : "";
      fmt::print(out, "  {:<{}}  {:<{}}  {:>12}  {:<27} {}\n", f.metric, metric_width,
                 labels_text(f.labels), label_width,
                 sum.count > 0 ? format_value(sum.median, f.unit) : "no data", range, sum.count);
    }
  }
  for (const auto& [part, reason] : s.skipped_parts()) {
    fmt::print(out, "  skipped part {}: {}\n", part, reason);
  }
  for (const auto& n : s.notes()) fmt::print(out, "  note: {}\n", n);
}

}  // namespace parker::bench
