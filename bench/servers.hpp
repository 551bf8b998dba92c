// Servers the harness starts for itself, each on a spare loopback port, logging into
// <out>/logs/, and stopped by pid when the RunningServer goes away.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "config.hpp"
#include "processes.hpp"

namespace parker::bench {

struct RunningServer {
  std::string name;  // "redis-server", "nutcracker", "heavy_server"
  ChildProcess process;
  std::uint16_t port = 0;
  std::uint16_t stats_port = 0;  // nutcracker only
  std::filesystem::path log;

  [[nodiscard]] pid_t pid() const noexcept { return process.pid(); }
};

// redis-server without persistence. Throws if it is not installed or does not start.
[[nodiscard]] RunningServer start_redis(const Config& config, const std::string& tag);

// nutcracker (twemproxy) in front of 127.0.0.1:backend_port, with its stats port moved to
// loopback (it listens on 0.0.0.0:22222 by default).
[[nodiscard]] RunningServer start_nutcracker(const Config& config, std::uint16_t backend_port,
                                             const std::string& tag);

// build/bin/heavy_server --port N --bind 127.0.0.1 [config.heavy_server_args...]; check
// heavy_server_built() first.
[[nodiscard]] bool heavy_server_built(const Config& config);
[[nodiscard]] RunningServer start_heavy_server(const Config& config, const std::string& tag);

// The log directory of a run (created on first use).
[[nodiscard]] std::filesystem::path log_dir(const Config& config);

}  // namespace parker::bench
