// The daemon's logging: spdlog to stderr, or to a file that SIGHUP reopens (for logrotate).
#pragma once

#include <string>

namespace parker::daemon {

struct LogSettings {
  std::string level = "info";
  std::string file;  // empty: stderr
};

// Installs the default spdlog logger. Returns an error text (empty on success).
[[nodiscard]] std::string setup_logging(const LogSettings& settings);

// Reopens the log file under the same name (after a rotation moved the old one away).
// Does nothing when logging to stderr. Returns an error text (empty on success); on error
// the previous logger stays in place.
[[nodiscard]] std::string reopen_log_file(const LogSettings& settings);

}  // namespace parker::daemon
