#include "options.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "metrics_server.hpp"
#include "parker/protocol.hpp"
#include "parker/version.h"

namespace parker::daemon {

std::string default_socket_path() {
  if (const char* env = std::getenv("PARKER_SOCKET"); env != nullptr && *env != '\0') return env;
  if (::geteuid() == 0) return "/run/parker/parker.sock";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/parker.sock";
  }
  return "/tmp/parker-" + std::to_string(::geteuid()) + ".sock";
}

std::uint32_t max_blob_limit() {
  // A PARK record is the bigger of the two (17 bytes + blob), after the u16 record count.
  return static_cast<std::uint32_t>(protocol::kMaxFrameBody - 2 - 17);
}

namespace {

// "0600", "600", "0o600": octal permission bits, nothing else.
std::string parse_mode(const std::string& text, mode_t& out) {
  std::string digits = text;
  if (digits.rfind("0o", 0) == 0) digits = digits.substr(2);
  if (digits.empty() || digits.size() > 4) return "expected an octal mode such as 0600";
  unsigned value = 0;
  for (char c : digits) {
    if (c < '0' || c > '7') return "expected an octal mode such as 0600";
    value = value * 8 + static_cast<unsigned>(c - '0');
  }
  if (value > 07777) return "mode out of range";
  out = static_cast<mode_t>(value);
  return {};
}

}  // namespace

ParseOutcome parse_options(int argc, char** argv) {
  Options o;
  CLI::App app{
      "parker: holds idle client sockets for servers and hands each back when it becomes readable,\n"
      "hangs up, reaches its deadline or is recalled. Runs in the foreground; logs to stderr."};
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.set_version_flag("--version", "parker " PARKER_VERSION, "Print the version and exit");

  std::string socket_help =
      "Unix socket to listen on (default: $PARKER_SOCKET, else /run/parker/parker.sock as root, "
      "else $XDG_RUNTIME_DIR/parker.sock, else /tmp/parker-$UID.sock; \"@name\" for the Linux "
      "abstract namespace)";
  app.add_option("--socket", o.config.socket_path, socket_help);
  std::string mode_text = "0600";
  app.add_option("--socket-mode", mode_text, "Permissions of the socket file, octal")
      ->default_str("0600")
      ->check([](const std::string& s) {
        mode_t ignored = 0;
        return parse_mode(s, ignored);
      });
  app.add_option("--allow-uid", o.config.allowed_uids,
                 "A uid allowed to connect (repeatable; parker's own uid and root always are)");
  app.add_option("--allow-gid", o.config.allowed_gids, "A gid allowed to connect (repeatable)");
  app.add_option("--max-parked", o.config.max_parked,
                 "Most client connections held in total, parked or on their way back; owners are granted no "
                 "credit beyond it (default 0: as many as the fd limit allows)");
  app.add_option("--max-parked-per-owner", o.config.max_parked_per_owner,
                 "Most connections parked per pool (default 0: no quota)");
  app.add_option("--max-blob", o.config.max_blob, "Largest state blob per parked connection, bytes")
      ->default_str("65536")
      ->check(CLI::Range(0u, max_blob_limit()));
  double grace_seconds = 60;
  app.add_option("--owner-grace", grace_seconds,
                 "Seconds wakes wait for a pool with no connected owner before they are closed")
      ->default_str("60")
      ->check(CLI::Range(0.0, 365.0 * 24 * 3600));
  double hello_seconds = 5;
  app.add_option("--hello-timeout", hello_seconds,
                 "Seconds a new peer has to say HELLO before parker drops it (it holds a descriptor slot)")
      ->default_str("5")
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error, critical or off")
      ->default_str("info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-file", o.log_file, "Log to this file instead of stderr (SIGHUP reopens it)");
  app.add_flag("--take-over", o.take_over,
               "Take over from the parker running at --socket: its listening socket and every parked and "
               "held connection, with their records; it exits once this one has them all (SIGUSR2 does this "
               "itself: it starts its successor with the same arguments plus --take-over)");
  app.add_flag("--keeper", o.keeper,
               "Survive a crash: keep a copy of every parked connection in parker-keeper (started if it is not "
               "running); a parker started after a crash takes them all back from it");
  app.add_option("--keeper-socket", o.keeper_socket, "The keeper's socket (default: --socket plus \".keeper\")");
  app.add_option("--metrics-listen", o.metrics_listen,
                 "Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9187, [::1]:9187; "
                 "port 0 picks a free one, logged)")
      ->check([](const std::string& s) {
        sockaddr_storage ignored{};
        return parse_listen_address(s, ignored) ? std::string() : std::string("expected ADDR:PORT, e.g. 127.0.0.1:9187");
      });
  app.footer(
      "Under systemd: a listening socket passed by socket activation (LISTEN_FDS) is used instead of\n"
      "--socket; readiness, status and the watchdog go to NOTIFY_SOCKET; log lines carry syslog\n"
      "priorities for the journal. Signals: TERM/INT hand every connection back and exit; HUP reopens\n"
      "--log-file.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return {std::nullopt, app.exit(e)};
  }
  (void)parse_mode(mode_text, o.config.socket_mode);
  o.config.owner_grace = std::chrono::milliseconds(static_cast<long long>(grace_seconds * 1000.0));
  o.config.hello_timeout = std::chrono::milliseconds(static_cast<long long>(hello_seconds * 1000.0));
  if (o.config.socket_path.empty()) o.config.socket_path = default_socket_path();
  if (o.keeper_socket.empty()) o.keeper_socket = o.config.socket_path + ".keeper";
  return {std::move(o), 0};
}

}  // namespace parker::daemon
