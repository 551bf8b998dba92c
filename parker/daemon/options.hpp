// Command-line options of the parker daemon, and the defaults an operator can rely on.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parker::daemon {

// What the daemon itself needs to run (everything but logging).
struct Config {
  std::string socket_path;               // filled with default_socket_path() when not given
  mode_t socket_mode = 0600;
  std::vector<uid_t> allowed_uids;       // parker's own uid and root are always allowed
  std::vector<gid_t> allowed_gids;
  std::uint32_t max_parked = 0;          // 0: as many as the fd capacity allows
  std::uint32_t max_parked_per_owner = 0;  // 0: no per-pool quota
  std::uint32_t max_blob = 64 * 1024;
  std::chrono::milliseconds owner_grace{60'000};
  // TERM waits for owners to read what they are handed back: as long as one takes some of
  // its output every shutdown_flush, up to shutdown_limit in all.
  std::chrono::milliseconds shutdown_flush{2'000};
  std::chrono::milliseconds shutdown_limit{30'000};
  std::chrono::milliseconds hello_timeout{5'000};   // a peer silent this long after connecting is dropped
  bool handle_signals = true;            // off for in-process tests
};

struct Options {
  Config config;
  std::string log_level = "info";
  std::string log_file;  // empty: stderr
  std::string metrics_listen;  // "ADDR:PORT" for GET /metrics over HTTP; empty: none
  bool take_over = false;      // take the listener and every connection from the parker at --socket
  bool keeper = false;         // keep a copy of every parked connection in parker-keeper (crash survival)
  std::string keeper_socket;   // the keeper's socket: --socket plus ".keeper" unless given
};

// Parses argv. Returns the options, or the exit code when the program must stop here
// (--help: 0; a bad flag: non-zero, with the message already printed by CLI11).
struct ParseOutcome {
  std::optional<Options> options;
  int exit_code = 0;
};
[[nodiscard]] ParseOutcome parse_options(int argc, char** argv);

// The socket path used when --socket is not given:
//   $PARKER_SOCKET if set and not empty;
//   /run/parker/parker.sock when running as root;
//   $XDG_RUNTIME_DIR/parker.sock when that is set;
//   /tmp/parker-$UID.sock otherwise.
[[nodiscard]] std::string default_socket_path();

// The largest --max-blob that still lets one record travel in one frame.
[[nodiscard]] std::uint32_t max_blob_limit();

}  // namespace parker::daemon
