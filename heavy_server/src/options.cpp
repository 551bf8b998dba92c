#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "heavy/config.hpp"
#include "parker/client_sharded_uv.hpp"
#include "parker/default_socket_path.hpp"
#include "parker/version.h"

namespace heavy {

// The same rule parker itself listens by, so the two meet with no flags at all.
std::string default_parker_socket() { return parker::default_socket_path(); }

OptionsOutcome parse_options(int argc, char** argv) {
  Config config;
  config.parker_sockets = {default_parker_socket()};
  CLI::App app{
      "heavy_server: a Redis-protocol (RESP2) server whose every connection carries a heavy session,\n"
      "the example parker is for. Try it with: redis-cli -p PORT"};
  app.set_version_flag("--version", "heavy_server " PARKER_VERSION, "Print the version and exit");
  app.add_option("--port", config.port, "TCP port to listen on (0: pick a free one; the log says which)")
      ->capture_default_str();
  app.add_option("--bind", config.bind, "Address to listen on")->capture_default_str();
  app.add_option("--parker", config.parker_sockets,
                 "parker's socket; give it once per parker to spread parked connections over several "
                 "(shards: each holds up to its own fd limit); \"\" alone: no parking")
      ->capture_default_str();
  app.add_option("--pool", config.pool, "Pool name this server parks its connections under")->capture_default_str();
  app.add_option("--park-after", config.park_after_ms, "Park a connection after this many ms without input")
      ->capture_default_str();
  app.add_option("--startup-timeout", config.startup_timeout_ms,
                 "At start, wait this many ms for each answer from parker (the connections it holds, "
                 "the listening socket a previous process left) before listening afresh without them")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}));
  app.add_option("--session-bytes", config.session_bytes,
                 "Working-set bytes of every active session (suffixes: K, M, KiB, MiB...)")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--snapshot", config.snapshot_path,
                 "Keyspace snapshot: read at start if it exists, written on TERM/INT");
  app.add_option("--timeout", config.client_limits.timeout_seconds,
                 "Close a client after this many seconds without a request, parked or not (0: never; "
                 "subscribers are exempt), as redis' timeout")
      ->capture_default_str();
  std::string query_limit = std::to_string(config.client_limits.query_buffer_bytes);
  app.add_option("--client-query-buffer-limit", query_limit,
                 "Close a client whose unparsed input grows past this (redis units: 1gb, 64mb...)")
      ->capture_default_str();
  std::vector<std::string> output_limits;
  app.add_option("--client-output-buffer-limit", output_limits,
                 "\"CLASS HARD SOFT SECONDS\" as redis' (CLASS normal or pubsub; repeatable); defaults: "
                 "\"normal 0 0 0\", \"pubsub 32mb 8mb 60\"");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return {std::nullopt, app.exit(e)};
  }
  if (auto bytes = parse_memory(query_limit); bytes && *bytes > 0) {
    config.client_limits.query_buffer_bytes = *bytes;
  } else {
    std::fprintf(stderr, "--client-query-buffer-limit: '%s' is not a size (e.g. 1gb, 64mb, 1048576)\n",
                 query_limit.c_str());
    return {std::nullopt, 2};
  }
  if (config.parker_sockets.size() == 1 && config.parker_sockets[0].empty()) {
    config.parker_sockets.clear();  // --parker "": serve without parking
  }
  for (const std::string& path : config.parker_sockets) {
    if (path.empty()) {
      std::fprintf(stderr, "--parker: an empty path among several parkers\n");
      return {std::nullopt, 2};
    }
    if (std::count(config.parker_sockets.begin(), config.parker_sockets.end(), path) > 1) {
      std::fprintf(stderr, "--parker: '%s' given twice\n", path.c_str());
      return {std::nullopt, 2};
    }
  }
  if (config.parker_sockets.size() > parker::UvShardedClient::kMaxShards) {
    std::fprintf(stderr, "--parker: at most %zu parkers\n", parker::UvShardedClient::kMaxShards);
    return {std::nullopt, 2};
  }
  for (const std::string& spec : output_limits) {
    if (std::string error = apply_output_limit(spec, config.client_limits); !error.empty()) {
      std::fprintf(stderr, "--%s\n", error.c_str());
      return {std::nullopt, 2};
    }
  }
  return {std::move(config), 0};
}

}  // namespace heavy
