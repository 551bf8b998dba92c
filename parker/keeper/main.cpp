// parker-keeper — holds a copy of every connection parker has parked, so that a parker that
// dies (SIGKILL, abort, a bug) loses none: the next parker takes them back from here.
//
//   parker-keeper --socket PATH [--linger SECONDS | --stay] [--log-level LEVEL]
//
// parker starts it itself (`parker --keeper`), on its socket's path plus ".keeper"; under
// systemd parker-keeper.service runs it with --stay, outside parker's cgroup. See
// docs/ARCHITECTURE.md, "Surviving a crash".
#include <CLI/CLI.hpp>

#include "keeper.hpp"
#include "log_format.hpp"
#include "parker/version.h"

int main(int argc, char** argv) {
  CLI::App app{"parker-keeper: keeps a copy of every connection parker has parked, for the parker after a crash"};
  app.set_version_flag("--version", "parker-keeper " PARKER_VERSION, "Print the version and exit");
  parker::keeper::KeeperConfig config;
  std::string log_level = "info";
  long long linger = config.linger.count();
  app.add_option("-s,--socket", config.socket_path, "the socket parker talks to the keeper on")->required();
  app.add_option("--linger", linger, "with no parker connected for this many seconds, close everything and exit")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--stay", config.stay,
               "keep running after parker stops cleanly and with no parker connected (for a service manager)")
      ->excludes("--linger");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  (void)parker::logs::stderr_logger("parker-keeper", log_level);
  config.linger = std::chrono::seconds(linger);
  return parker::keeper::Keeper(std::move(config)).run();
}
