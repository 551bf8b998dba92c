// PNG plots through gnuplot, run as a subprocess on a generated script.
#include <fstream>

#include <fmt/format.h>

#include "outputs.hpp"
#include "processes.hpp"

namespace parker::bench {
namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string script_for(const PlotSpec& plot, const std::filesystem::path& out_dir) {
  std::string s;
  s += "set terminal pngcairo size 960,600 noenhanced font \"sans,10\"\n";
  s += fmt::format("set output {}\n", quoted((out_dir / plot.file).string()));
  s += fmt::format("set title {}\n", quoted(plot.title));
  s += fmt::format("set xlabel {}\nset ylabel {}\n", quoted(plot.x_label), quoted(plot.y_label));
  s += "set grid\nset key outside bottom center horizontal\n";
  if (plot.log_x) s += "set logscale x\n";
  if (plot.log_y) s += "set logscale y\n";
  if (!plot.y_format.empty()) s += fmt::format("set format y {}\n", quoted(plot.y_format));
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < plot.series.size(); ++i) {
    const auto& series = plot.series[i];
    if (series.points.empty()) continue;
    s += fmt::format("$s{} << EOD\n", i);
    for (const auto& [x, y] : series.points) s += fmt::format("{:.10g} {:.10g}\n", x, y);
    s += "EOD\n";
    parts.push_back(fmt::format("$s{} using 1:2 with {} lw 2 title {}", i, plot.style, quoted(series.title)));
  }
  if (parts.empty()) return {};
  s += "plot ";
  for (std::size_t i = 0; i < parts.size(); ++i) s += (i > 0 ? ", \\\n     " : "") + parts[i];
  s += "\n";
  return s;
}

}  // namespace

void render_plots(Results& results, const std::filesystem::path& out_dir) {
  auto gnuplot = find_in_path("gnuplot");
  if (!gnuplot) {
    results.plots_status = "skipped: gnuplot not found (apt install gnuplot-nox); JSON and CSV written";
    fmt::print(stderr, "WARNING: {}\n", results.plots_status);
    return;
  }
  std::vector<std::string> failures;
  for (const auto& scenario : results.scenarios) {
    for (const auto& plot : scenario.plots()) {
      std::string script = script_for(plot, std::filesystem::absolute(out_dir));
      if (script.empty()) continue;
      auto script_path = out_dir / (std::filesystem::path(plot.file).stem().string() + ".gp");
      std::ofstream(script_path) << script;
      auto result = run_capture({gnuplot->string(), script_path.string()}, std::chrono::seconds(30),
                                out_dir / "gnuplot.log");
      if (result.code == 0 && std::filesystem::exists(out_dir / plot.file)) {
        results.plot_files.push_back(plot.file);
      } else {
        failures.push_back(plot.file);
      }
    }
  }
  if (failures.empty()) {
    results.plots_status = fmt::format("ok: {} plot(s)", results.plot_files.size());
  } else {
    results.plots_status = fmt::format("{} plot(s) failed (see gnuplot.log): {}", failures.size(),
                                       fmt::join(failures, ", "));
    fmt::print(stderr, "WARNING: {}\n", results.plots_status);
  }
}

}  // namespace parker::bench
