// (1) fd passing, raw: fds per second between two processes for batches of 1, 8, 64 and
// 253 fds per message, through the project's library, against the floor (sendmsg/recvmsg
// straight on the syscalls) and libuv's IPC (uv_write2, one handle per write).
// Repetitions are interleaved (floor, library, libuv, floor, ...) so that each ratio is
// taken between runs that saw the same moment of a noisy machine.
#include <fmt/format.h>

#include <map>
#include <string>

#include "fd_pass_methods.hpp"
#include "loopback.hpp"
#include "progress.hpp"
#include "scenario.hpp"

namespace parker::bench {

void run_fd_passing_raw(const Config& config, ScenarioReport& report) {
  const std::vector<std::size_t> batches = {1, 8, 64, 253};
  const std::size_t total = config.pick<std::size_t>(4000, 100000, 1000000);
  const int reps = config.reps(2, 5);
  const auto timeout = std::chrono::milliseconds(60000);
  report.param("fds_per_repetition", std::to_string(total));
  report.param("repetitions", std::to_string(reps));
  report.param("socket", "AF_UNIX SOCK_STREAM socketpair, blocking; 1 data byte per message");
  report.param("fd_sent", "a connected loopback TCP socket");

  // The fd that travels: a real TCP socket, like the ones parker passes.
  UniqueFd listener = listen_tcp("127.0.0.1", 0, 16, false);
  UniqueFd client = connect_tcp("127.0.0.1", local_port(listener.get()));

  std::map<std::size_t, std::vector<double>> floor, library;
  std::vector<double> libuv;
  Progress progress("fd_passing_raw", static_cast<std::uint64_t>(reps) * (batches.size() * 2 + 1));
  for (int rep = 0; rep < reps; ++rep) {
    for (std::size_t batch : batches) {
      floor[batch].push_back(measure_fd_passing(FdPassMethod::floor, batch, total, client.get(), timeout));
      progress.advance();
      library[batch].push_back(measure_fd_passing(FdPassMethod::library, batch, total, client.get(), timeout));
      progress.advance();
    }
    libuv.push_back(measure_fd_passing(FdPassMethod::libuv, 1, total, client.get(), timeout));
    progress.advance();
  }
  progress.finish();

  PlotSpec plot{"fd_passing_raw.png", "fd passing: fds per second between two processes",
                "fds per message", "fds per second", true, false, "linespoints", "%.1s%c", {}};
  PlotSeries floor_series{"floor (raw sendmsg/recvmsg)", {}};
  PlotSeries library_series{"parker library", {}};
  PlotSeries libuv_series{"libuv uv_write2 (one fd per write)", {}};
  const Summary uv = report.add("fds_per_second", {{"method", "libuv"}, {"batch", "1"}}, "fd/s", libuv);
  for (std::size_t batch : batches) {
    std::string b = std::to_string(batch);
    const Summary f = report.add("fds_per_second", {{"method", "floor"}, {"batch", b}}, "fd/s", floor[batch]);
    const Summary l = report.add("fds_per_second", {{"method", "library"}, {"batch", b}}, "fd/s", library[batch]);
    report.add("library_vs_floor", {{"batch", b}}, "x", pairwise_ratios(library[batch], floor[batch]));
    report.add("library_vs_libuv", {{"batch", b}}, "x", pairwise_ratios(library[batch], libuv));
    double x = static_cast<double>(batch);
    floor_series.points.emplace_back(x, f.median);
    library_series.points.emplace_back(x, l.median);
    libuv_series.points.emplace_back(x, uv.median);
  }
  plot.series = {floor_series, library_series, libuv_series};
  report.add_plot(std::move(plot));
  report.note("library_vs_floor near 1 means the library adds nothing measurable to the kernel's "
              "own cost; library_vs_libuv compares batches against libuv's one-handle-per-write IPC.");
}

}  // namespace parker::bench
