// heavy_server's configuration: what the command line says.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "heavy/client_limits.hpp"

namespace heavy {

struct Config {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6380;  // not 6379, so it never clashes with a real redis; 0: ephemeral
  // Parking (stored now, used once the parker client library is wired in).
  // One path per parker (shard); default: default_parker_socket(). Empty: no parking.
  std::vector<std::string> parker_sockets;
  std::string pool = "heavy_server";
  std::uint64_t park_after_ms = 1000;
  std::uint64_t startup_timeout_ms = 5000;  // see ParkingOptions
  std::uint64_t session_bytes = 256 * 1024;
  std::string log_level = "info";
  std::string snapshot_path;  // empty: no snapshot
  ClientLimits client_limits;  // --timeout, --client-query-buffer-limit, --client-output-buffer-limit
};

// parker's default socket path (docs/PROTOCOL.md): /tmp/parker-$UID.sock.
[[nodiscard]] std::string default_parker_socket();

struct OptionsOutcome {
  std::optional<Config> config;  // set: run with it
  int exit_code = 0;             // otherwise: exit with this (0 after --help)
};

// Parses the command line; prints --help or a clear error itself.
[[nodiscard]] OptionsOutcome parse_options(int argc, char** argv);

}  // namespace heavy
