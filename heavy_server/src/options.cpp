#include <unistd.h>

#include <CLI/CLI.hpp>

#include "heavy/config.hpp"
#include "parker/default_socket_path.hpp"
#include "parker/version.h"

namespace heavy {

// The same rule parker itself listens by, so the two meet with no flags at all.
std::string default_parker_socket() { return parker::default_socket_path(); }

OptionsOutcome parse_options(int argc, char** argv) {
  Config config;
  config.parker_socket = default_parker_socket();
  CLI::App app{
      "heavy_server: a Redis-protocol (RESP2) server whose every connection carries a heavy session,\n"
      "the example parker is for. Try it with: redis-cli -p PORT"};
  app.set_version_flag("--version", "heavy_server " PARKER_VERSION, "Print the version and exit");
  app.add_option("--port", config.port, "TCP port to listen on (0: pick a free one; the log says which)")
      ->capture_default_str();
  app.add_option("--bind", config.bind, "Address to listen on")->capture_default_str();
  app.add_option("--parker", config.parker_socket, "parker's socket")->capture_default_str();
  app.add_option("--pool", config.pool, "Pool name this server parks its connections under")->capture_default_str();
  app.add_option("--park-after", config.park_after_ms, "Park a connection after this many ms without input")
      ->capture_default_str();
  app.add_option("--session-bytes", config.session_bytes,
                 "Working-set bytes of every active session (suffixes: K, M, KiB, MiB...)")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--snapshot", config.snapshot_path,
                 "Keyspace snapshot: read at start if it exists, written on TERM/INT");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return {std::nullopt, app.exit(e)};
  }
  return {std::move(config), 0};
}

}  // namespace heavy
