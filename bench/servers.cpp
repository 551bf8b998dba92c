#include "servers.hpp"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "loopback.hpp"
#include "parker/unix_socket.hpp"

namespace parker::bench {
namespace {

// Spawns `make_argv(port)` on a fresh spare port and waits until the port accepts. A port
// picked free can be taken by someone else before the server binds it: then the server
// exits, and we try again on another port (at most 3 times, and say so if all fail).
RunningServer start_on_spare_port(const std::string& name, const std::filesystem::path& log,
                                  const std::function<std::vector<std::string>(std::uint16_t)>& make_argv) {
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::uint16_t port = pick_free_port();
    RunningServer server{name, ChildProcess::spawn(make_argv(port), log), port, 0, log, {}};
    auto deadline = std::chrono::steady_clock::now() + 10s;
    bool up = false;
    while (std::chrono::steady_clock::now() < deadline && server.process.running()) {
      if (wait_for_port(port, 100ms)) {
        up = true;
        break;
      }
    }
    // Still ours? A server that lost the port race exits right after.
    std::this_thread::sleep_for(20ms);
    if (up && server.process.running()) return server;
    last_error = fmt::format("{} did not start on port {} (see {})", name, port, log.string());
    server.process.stop(1s);
  }
  throw std::runtime_error(last_error);
}

std::filesystem::path required_program(const std::string& name) {
  auto path = find_in_path(name);
  if (!path) throw std::runtime_error(fmt::format("{} not installed", name));
  return *path;
}

}  // namespace

std::string missing_tools(const std::vector<std::string>& programs) {
  for (const auto& program : programs) {
    if (find_in_path(program)) continue;
    std::string package = program == "redis-benchmark" ? "redis-tools" : program == "gnuplot" ? "gnuplot-nox" : program;
    return fmt::format("{} not installed (apt install {})", program, package);
  }
  return {};
}

std::filesystem::path log_dir(const Config& config) {
  auto dir = config.out_dir / "logs";
  std::filesystem::create_directories(dir);
  return dir;
}

RunningServer start_redis(const Config& config, const std::string& tag) {
  auto program = required_program("redis-server");
  auto dir = log_dir(config);
  return start_on_spare_port("redis-server", dir / (tag + ".log"), [&](std::uint16_t port) {
    return std::vector<std::string>{program.string(), "--port", std::to_string(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", dir.string(),
                                    "--daemonize", "no",
                                    // N clients plus the publisher and the harness's own; redis
                                    // lowers it to RLIMIT_NOFILE - 32 itself if need be.
                                    "--maxclients", "19900",
                                    // Bound to 127.0.0.1 only; protected mode would refuse our idle
                                    // clients, which come from 127.0.0.2 and up.
                                    "--protected-mode", "no"};
  });
}

RunningServer start_nutcracker(const Config& config, std::uint16_t backend_port, const std::string& tag) {
  auto program = required_program("nutcracker");
  auto dir = log_dir(config);
  std::uint16_t stats_port = pick_free_port();
  auto conf = dir / (tag + ".yml");
  auto server = start_on_spare_port("nutcracker", dir / (tag + ".log"), [&](std::uint16_t port) {
    std::ofstream(conf) << fmt::format(
        "bench:\n"
        "  listen: 127.0.0.1:{}\n"
        "  hash: fnv1a_64\n"
        "  distribution: ketama\n"
        "  redis: true\n"
        "  auto_eject_hosts: false\n"
        "  server_connections: 1\n"
        "  servers:\n"
        "   - 127.0.0.1:{}:1\n",
        port, backend_port);
    return std::vector<std::string>{program.string(), "-c", conf.string(), "-a", "127.0.0.1", "-s",
                                    std::to_string(stats_port), "-o", (dir / (tag + ".log")).string()};
  });
  server.stats_port = stats_port;
  return server;
}

ScratchDir::ScratchDir() {
  char templ[] = "/tmp/parker-bench-XXXXXX";
  if (::mkdtemp(templ) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool parker_built(const Config& config) { return std::filesystem::exists(config.program("parker")); }

RunningServer start_parker(const Config& config, const ScratchDir& dir, const std::string& tag,
                           const std::vector<std::string>& extra) {
  auto socket = dir.path() / (tag + ".sock");
  auto log = log_dir(config) / (tag + ".log");
  std::vector<std::string> argv{config.program("parker").string(), "--socket", socket.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  RunningServer parker{"parker", ChildProcess::spawn(argv, log), 0, 0, log, socket};
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && parker.process.running()) {
    if (connect_unix(socket.string()).ok()) return parker;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error(fmt::format("parker did not start on {} (see {})", socket.string(), log.string()));
}

bool heavy_server_built(const Config& config) {
  return std::filesystem::exists(config.program("heavy_server"));
}

RunningServer start_heavy_server(const Config& config, const std::string& tag,
                                 const std::filesystem::path& parker_socket) {
  return start_heavy_server(config, tag, std::vector<std::filesystem::path>{parker_socket});
}

RunningServer start_heavy_server(const Config& config, const std::string& tag,
                                 const std::vector<std::filesystem::path>& parker_sockets) {
  auto program = config.program("heavy_server");
  auto dir = log_dir(config);
  return start_on_spare_port("heavy_server", dir / (tag + ".log"), [&](std::uint16_t port) {
    std::vector<std::string> argv{program.string(), "--port", std::to_string(port), "--bind", "127.0.0.1"};
    for (const auto& socket : parker_sockets) argv.insert(argv.end(), {"--parker", socket.string()});
    argv.insert(argv.end(), config.heavy_server_args.begin(), config.heavy_server_args.end());
    return argv;
  });
}

}  // namespace parker::bench
