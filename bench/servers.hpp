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
  std::filesystem::path socket;  // parker only: its Unix socket

  [[nodiscard]] pid_t pid() const noexcept { return process.pid(); }
};

// redis-server without persistence. Throws if it is not installed or does not start.
[[nodiscard]] RunningServer start_redis(const Config& config, const std::string& tag);

// nutcracker (twemproxy) in front of 127.0.0.1:backend_port, with its stats port moved to
// loopback (it listens on 0.0.0.0:22222 by default).
[[nodiscard]] RunningServer start_nutcracker(const Config& config, std::uint16_t backend_port,
                                             const std::string& tag);

// A fresh directory under /tmp (Unix socket paths must be short), removed with its content.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// build/bin/parker --socket <dir>/<tag>.sock; returns once the socket accepts.
[[nodiscard]] bool parker_built(const Config& config);
[[nodiscard]] RunningServer start_parker(const Config& config, const ScratchDir& dir, const std::string& tag,
                                         const std::vector<std::string>& extra = {});

// build/bin/heavy_server --port N --bind 127.0.0.1 --parker <parker_socket>
// [config.heavy_server_args...]; check heavy_server_built() first. `parker_socket` is always
// passed, so heavy_server never talks to a parker of someone else at the default path: give a
// path where nothing listens to run it without parking.
[[nodiscard]] bool heavy_server_built(const Config& config);
[[nodiscard]] RunningServer start_heavy_server(const Config& config, const std::string& tag,
                                               const std::filesystem::path& parker_socket);
// The same with one --parker per socket: the pool spread over several parkers (shards).
[[nodiscard]] RunningServer start_heavy_server(const Config& config, const std::string& tag,
                                               const std::vector<std::filesystem::path>& parker_sockets);

// The first of `programs` (redis-server, nutcracker, redis-benchmark...) not installed, with
// the Debian package to install, e.g. "nutcracker not installed (apt install nutcracker)";
// empty when all are there. Scenarios skip with this reason rather than fail.
[[nodiscard]] std::string missing_tools(const std::vector<std::string>& programs);

// The log directory of a run (created on first use).
[[nodiscard]] std::filesystem::path log_dir(const Config& config);

}  // namespace parker::bench
