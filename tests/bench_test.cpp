// The benchmark harness cannot rot: a quick run completes and writes its results, and the
// pieces the numbers rest on (medians, percentiles, ratios, JSON text) are right.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/json_writer.hpp"
#include "bench/stats.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

namespace {

using namespace parker::test;
namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Processes whose command line mentions `text` (the harness puts its results directory on
// the command lines of the servers it starts, so this finds any it left behind).
std::vector<std::string> processes_mentioning(const std::string& text) {
  std::vector<std::string> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string cmdline = read_text(fs::path("/proc") / e->d_name / "cmdline");
    for (char& c : cmdline) {
      if (c == '\0') c = ' ';
    }
    if (cmdline.find(text) != std::string::npos) found.push_back(std::string(e->d_name) + ": " + cmdline);
  }
  ::closedir(proc);
  return found;
}

}  // namespace

TEST_CASE("a quick run writes results.json, results.csv and plots, and leaves no server running", "[bench]") {
  TempDir dir;
  const std::string out = dir.file("results");
  std::size_t fds_before = parker::test::open_fd_count();

  Process bench({program_path("parker_bench"), "--quick", "--out", out});
  bench.drain_output(120s);
  auto status = bench.wait(10s);
  INFO(bench.output());
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);

  std::string json = read_text(fs::path(out) / "results.json");
  REQUIRE(!json.empty());
  CHECK(json.front() == '{');
  // Top-level keys are indented by exactly two spaces by the writer.
  CHECK(json.find("\n  \"machine\": {") != std::string::npos);
  CHECK(json.find("\n  \"scenarios\": [") != std::string::npos);
  CHECK(json.find("\"rlimit_nofile_soft\"") != std::string::npos);
  for (const char* name : {"fd_passing_raw", "park_wake_throughput", "idle_scale", "wake_latency",
                           "proxy_nutcracker", "idle_cost", "server_speed", "ack_cost", "handover", "keeper_cost", "shards"}) {
    INFO(name);
    CHECK(json.find(std::string("\"name\": \"") + name + "\"") != std::string::npos);
  }
  // The scenarios that need only the fd-passing library measured something real.
  CHECK(json.find("\"metric\": \"fds_per_second\"") != std::string::npos);
  CHECK(json.find("\"metric\": \"rtt_p50\"") != std::string::npos);
  // parker, its client library and heavy_server are built with the tests: the scenarios that
  // measure through them ran, and none failed.
  CHECK(json.find("\"status\": \"failed\"") == std::string::npos);
  for (const char* metric : {"parker_vs_minimal_p50", "parked_per_second", "woken_per_second",
                             "parker_bytes_per_parked_conn", "heavy_server_saved_per_conn",
                             // ack_cost: 1.0 sessions (the bench's raw owner) against 1.1 ones
                             "park_v11_vs_v10", "wake_v11_vs_v10", "cpu_v11_vs_v10", "parked_p50_v11_vs_v10",
                             // handover: a successor parker took everything over (parker --take-over)
                             "handover_ms", "handover_served_ms", "handover_lost",
                             // park_wake_throughput against the minimal parker's cycle (issue 13)
                             "park_vs_minimal", "wake_vs_minimal",
                             // keeper_cost: parker --keeper against plain parker (issue 10's crash survival)
                             "park_keeper_vs_plain", "wake_keeper_vs_plain", "keeper_cpu_per_park_and_wake",
                             // shards: one heavy_server over several parkers (issue 13)
                             "shards_park_all_seconds", "shards_ping_answered"}) {
    INFO(metric);
    CHECK(json.find(std::string("\"metric\": \"") + metric + "\"") != std::string::npos);
  }

  // handover: after every take-over the successor held every connection (a count, not a time).
  if (auto lost = json.find("\"metric\": \"handover_lost\""); lost != std::string::npos) {
    auto max = json.find("\"max\": ", lost);
    REQUIRE(max != std::string::npos);
    CHECK(json.substr(max, 10) == "\"max\": 0,\n");
  }

  std::string csv = read_text(fs::path(out) / "results.csv");
  CHECK(csv.rfind("scenario,status,metric,labels,unit,median,min,max,repetitions\n", 0) == 0);
  CHECK(csv.find("fd_passing_raw,ok,fds_per_second,") != std::string::npos);

  std::size_t pngs = 0;
  for (const auto& entry : fs::directory_iterator(out)) {
    if (entry.path().extension() == ".png" && entry.file_size() > 0) ++pngs;
  }
  CHECK(pngs >= 1);

  CHECK(processes_mentioning(out).empty());
  CHECK(parker::test::open_fd_count() == fds_before);
}

TEST_CASE("parker_bench rejects an unknown scenario name with a clear message", "[bench]") {
  auto result = run_command(program_path("parker_bench") + " --only no_such_scenario --out /nonexistent/x");
  CHECK(result.code == 2);
  CHECK(result.output.find("unknown scenario 'no_such_scenario'") != std::string::npos);
}

TEST_CASE("summaries: median of odd and even counts, min and max", "[bench]") {
  using parker::bench::summarize;
  auto odd = summarize({5, 1, 3});
  CHECK(odd.median == 3);
  CHECK(odd.min == 1);
  CHECK(odd.max == 5);
  CHECK(odd.count == 3);
  CHECK(summarize({4, 1, 3, 2}).median == 2.5);
  CHECK(summarize({}).count == 0);
}

TEST_CASE("percentiles use the nearest rank", "[bench]") {
  std::vector<double> sorted;
  for (int i = 1; i <= 1000; ++i) sorted.push_back(i);
  CHECK(parker::bench::quantile_of_sorted(sorted, 0.5) == 500);
  CHECK(parker::bench::quantile_of_sorted(sorted, 0.99) == 990);
  CHECK(parker::bench::quantile_of_sorted(sorted, 0.999) == 999);
  CHECK(parker::bench::quantile_of_sorted(sorted, 1.0) == 1000);
  CHECK(parker::bench::quantile_of_sorted({}, 0.5) == 0);
}

TEST_CASE("ratios pair repetitions and skip zero divisors", "[bench]") {
  auto r = parker::bench::pairwise_ratios({2, 9, 4}, {1, 3, 0});
  REQUIRE(r.size() == 2);
  CHECK(r[0] == 2);
  CHECK(r[1] == 3);
}

TEST_CASE("the JSON writer escapes text and writes null for non-finite numbers", "[bench]") {
  parker::bench::JsonWriter j;
  j.begin_object();
  j.field("text", "a\"b\\c\n\x01");
  j.field("nan", std::numeric_limits<double>::quiet_NaN());
  j.key("list");
  j.begin_array();
  j.value(1);
  j.value(2.5);
  j.end_array();
  j.key("empty");
  j.begin_object();
  j.end_object();
  j.end_object();
  CHECK(j.text() ==
        "{\n"
        "  \"text\": \"a\\\"b\\\\c\\n\\u0001\",\n"
        "  \"nan\": null,\n"
        "  \"list\": [\n"
        "    1,\n"
        "    2.5\n"
        "  ],\n"
        "  \"empty\": {}\n"
        "}");
}
