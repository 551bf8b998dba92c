// results.json and results.csv.
#include <fmt/format.h>

#include "json_writer.hpp"
#include "outputs.hpp"

namespace parker::bench {
namespace {

void write_machine(JsonWriter& j, const MachineInfo& m) {
  j.begin_object();
  j.field("cores", m.cores);
  j.field("kernel", m.kernel);
  j.field("kernel_version", m.kernel_version);
  j.field("rlimit_nofile_soft", m.nofile_soft);
  j.field("rlimit_nofile_hard", m.nofile_hard);
  j.field("libuv", m.libuv);
  j.field("date", m.date);
  j.field("hostname", m.hostname);
  j.field("cpu_model", m.cpu_model);
  j.field("memory_total_kb", m.memory_total_kb);
  j.field("build_type", m.build_type);
  j.field("sanitized", m.sanitized);
  j.end_object();
}

void write_labels(JsonWriter& j, const Labels& labels) {
  j.begin_object();
  for (const auto& [k, v] : labels) j.field(k, v);
  j.end_object();
}

void write_scenario(JsonWriter& j, const ScenarioReport& s) {
  j.begin_object();
  j.field("name", s.name());
  j.field("description", s.description());
  j.field("status", to_string(s.status()));
  if (!s.reason().empty()) j.field("reason", s.reason());
  j.field("elapsed_seconds", s.elapsed_seconds);
  j.key("params");
  write_labels(j, s.params());
  j.key("figures");
  j.begin_array();
  for (const auto& f : s.figures()) {
    j.begin_object();
    j.field("metric", f.metric);
    j.key("labels");
    write_labels(j, f.labels);
    j.field("unit", f.unit);
    if (f.summary.count > 0) {
      j.field("median", f.summary.median);
      j.field("min", f.summary.min);
      j.field("max", f.summary.max);
    }
    j.field("repetitions", f.summary.count);
    j.key("samples");
    j.begin_array();
    for (double v : f.samples) j.value(v);
    j.end_array();
    j.end_object();
  }
  j.end_array();
  j.key("skipped_parts");
  j.begin_array();
  for (const auto& [part, reason] : s.skipped_parts()) {
    j.begin_object();
    j.field("part", part);
    j.field("reason", reason);
    j.end_object();
  }
  j.end_array();
  j.key("notes");
  j.begin_array();
  for (const auto& n : s.notes()) j.value(n);
  j.end_array();
  j.key("plots");
  j.begin_array();
  for (const auto& p : s.plots()) j.value(p.file);
  j.end_array();
  j.end_object();
}

// RFC 4180: quote fields holding a comma, quote or newline.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_number(double v) { return fmt::format("{:.10g}", v); }

}  // namespace

std::string results_json(const Results& r) {
  JsonWriter j;
  j.begin_object();
  j.key("machine");
  write_machine(j, r.machine);
  j.field("command", r.command_line);
  j.key("scenarios");
  j.begin_array();
  for (const auto& s : r.scenarios) write_scenario(j, s);
  j.end_array();
  j.field("plots_status", r.plots_status);
  j.key("plot_files");
  j.begin_array();
  for (const auto& f : r.plot_files) j.value(f);
  j.end_array();
  j.end_object();
  return j.text() + "\n";
}

std::string results_csv(const Results& r) {
  std::string out = "scenario,status,metric,labels,unit,median,min,max,repetitions\n";
  for (const auto& s : r.scenarios) {
    std::string status = to_string(s.status());
    if (!s.reason().empty()) status += ": " + s.reason();
    if (s.figures().empty()) {
      out += fmt::format("{},{},,,,,,,0\n", csv_field(s.name()), csv_field(status));
    }
    for (const auto& f : s.figures()) {
      bool has = f.summary.count > 0;
      out += fmt::format("{},{},{},{},{},{},{},{},{}\n", csv_field(s.name()), csv_field(status),
                         csv_field(f.metric), csv_field(labels_text(f.labels, ";")), csv_field(f.unit),
                         has ? csv_number(f.summary.median) : "", has ? csv_number(f.summary.min) : "",
                         has ? csv_number(f.summary.max) : "", f.summary.count);
    }
    for (const auto& [part, reason] : s.skipped_parts()) {
      out += fmt::format("{},{},,{},,,,,0\n", csv_field(s.name()),
                         csv_field("skipped part: " + reason), csv_field("part=" + part));
    }
  }
  return out;
}

}  // namespace parker::bench
