// Reading a running parker's figures the way an operator does: `parkerctl stats` (the
// Prometheus text exposition) over its socket.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

namespace parker::bench {

// The value of gauge or counter `name` (no labels) in a Prometheus text exposition, or -1
// when it is not there.
[[nodiscard]] long long metric_value(const std::string& text, const std::string& name);

// Metric `name` of the parker at `socket`, or -1 when it does not answer within `timeout`.
[[nodiscard]] long long parker_metric(const std::filesystem::path& socket, const std::string& name,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace parker::bench
