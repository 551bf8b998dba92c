// What a benchmark run found: per scenario, its figures (medians with min–max over
// repetitions), notes, skipped parts and plots; plus the machine it ran on. Scenarios fill
// a ScenarioReport; main writes it out as a terminal table, JSON, CSV and PNG plots.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "machine.hpp"
#include "stats.hpp"

namespace parker::bench {

// Which variant a figure belongs to, in order: {"method", "library"}, {"batch", "8"}.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Units the reporters know how to print: "fd/s", "req/s", "us", "B", "s", "x" (a ratio),
// "%" and "count". Anything else is printed as a plain number.
struct Figure {
  std::string metric;           // what was measured: "fds_per_second", "rtt_p99"
  Labels labels;                // which variant
  std::string unit;
  std::vector<double> samples;  // one per repetition, in the order measured
  Summary summary;              // of `samples`
};

struct PlotSeries {
  std::string title;
  std::vector<std::pair<double, double>> points;
};

struct PlotSpec {
  std::string file;  // name inside the output directory, ends in .png
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;
  bool log_y = false;
  std::string style = "linespoints";  // gnuplot "with" style; "lines" for CDFs
  std::string y_format;               // gnuplot "set format y", e.g. "%.1s%c" for 1.5M
  std::vector<PlotSeries> series;
};

enum class Status { ok, skipped, failed };
[[nodiscard]] const char* to_string(Status status) noexcept;

class ScenarioReport {
 public:
  ScenarioReport(std::string name, std::string description);

  // Records a figure measured once per repetition and returns its summary (a copy: later
  // additions move the stored figures).
  Summary add(std::string metric, Labels labels, std::string unit,
                    std::vector<double> samples);
  // A setting of this run (sizes, repetitions), written with the results.
  void param(std::string key, std::string value);
  // A sentence shown under the table and stored in the JSON.
  void note(std::string text);
  // Part of the scenario could not run (e.g. "parker" before the daemon exists): says so
  // in every output instead of leaving a silent gap.
  void skip_part(std::string part, std::string reason);
  // The whole scenario did not run / broke; figures measured before a failure are kept.
  void skip(std::string reason);
  void fail(std::string reason);
  void add_plot(PlotSpec plot);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] const std::string& description() const noexcept { return description_; }
  [[nodiscard]] Status status() const noexcept { return status_; }
  [[nodiscard]] const std::string& reason() const noexcept { return reason_; }
  [[nodiscard]] const std::vector<Figure>& figures() const noexcept { return figures_; }
  [[nodiscard]] const Labels& params() const noexcept { return params_; }
  [[nodiscard]] const std::vector<std::string>& notes() const noexcept { return notes_; }
  [[nodiscard]] const Labels& skipped_parts() const noexcept { return skipped_parts_; }
  [[nodiscard]] const std::vector<PlotSpec>& plots() const noexcept { return plots_; }
  [[nodiscard]] const Figure* find(const std::string& metric, const Labels& labels) const;

  double elapsed_seconds = 0;

 private:
  std::string name_;
  std::string description_;
  Status status_ = Status::ok;
  std::string reason_;
  std::vector<Figure> figures_;
  Labels params_;
  std::vector<std::string> notes_;
  Labels skipped_parts_;
  std::vector<PlotSpec> plots_;
};

struct Results {
  MachineInfo machine;
  std::string command_line;
  std::vector<ScenarioReport> scenarios;
  std::vector<std::string> plot_files;  // written PNGs (names inside the output directory)
  std::string plots_status = "not run";  // "ok", or why plots are missing
};

// "batch=8 method=library"
[[nodiscard]] std::string labels_text(const Labels& labels, const char* separator = " ");

// "1.52M", "45.2 µs", "8.4 KB", "0.93×": how the terminal shows a value of `unit`.
[[nodiscard]] std::string format_value(double value, const std::string& unit);

}  // namespace parker::bench
