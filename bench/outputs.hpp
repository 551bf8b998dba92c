// Writing a run's results: the terminal table, results.json, results.csv, and PNG plots.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

#include "report.hpp"

namespace parker::bench {

// One scenario as a readable table: figure, variant, median, (min–max), repetitions.
void print_scenario(const ScenarioReport& scenario, std::FILE* out);

// {"machine": {...}, "scenarios": [{"name": ..., "status": ..., "figures": [...]}, ...], ...}
[[nodiscard]] std::string results_json(const Results& results);
// One row per figure: scenario,status,metric,labels,unit,median,min,max,repetitions.
[[nodiscard]] std::string results_csv(const Results& results);

// Renders every scenario's plots with gnuplot (a generated script per plot, kept next to
// the PNG so a plot can be tweaked and redrawn). Without gnuplot it records why in
// results.plots_status and returns; JSON and CSV are still written by the caller.
void render_plots(Results& results, const std::filesystem::path& out_dir);

}  // namespace parker::bench
