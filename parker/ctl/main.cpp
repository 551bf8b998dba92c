// parkerctl — ask a running parker for its statistics or its pools.
//
//   parkerctl [--socket PATH] [--timeout SECONDS] stats   Prometheus text exposition
//   parkerctl [--socket PATH] [--timeout SECONDS] list    one line per pool
//
// Exit status: 0 answered; 1 bad usage; 2 parker cannot be reached (not running, no socket,
// permission denied); 3 parker refused or failed to answer.
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "log_format.hpp"
#include "parker/default_socket_path.hpp"
#include "parker/version.h"
#include "query.hpp"

namespace {
constexpr int kExitUsage = 1;
constexpr int kExitUnreachable = 2;
constexpr int kExitFailed = 3;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"parkerctl: ask a running parker daemon for its statistics or its pools"};
  app.footer(
      "Exit status: 0 answered; 1 bad usage; 2 parker cannot be reached (not running, no socket,\n"
      "permission denied); 3 parker refused or failed to answer.");
  app.set_version_flag("--version", "parkerctl " PARKER_VERSION, "Print the version and exit");
  std::string socket_path = parker::default_socket_path();
  double timeout_seconds = 5.0;
  app.add_option("-s,--socket", socket_path,
                 "parker's control socket (default: $PARKER_SOCKET, else /run/parker/parker.sock as root, "
                 "else $XDG_RUNTIME_DIR/parker.sock, else /tmp/parker-UID.sock)")
      ->capture_default_str();
  app.add_option("-t,--timeout", timeout_seconds, "seconds to wait for each answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* stats = app.add_subcommand("stats", "print parker's metrics (Prometheus text exposition)");
  auto* list = app.add_subcommand("list", "print the pools of parked connections, one line each");
  app.require_subcommand(1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints help (code 0) or the error with a hint
    return code == 0 ? 0 : kExitUsage;
  }

  // Diagnostics in the format every program of the project logs in; answers go to stdout.
  (void)parker::logs::stderr_logger("parkerctl");
  auto question = stats->parsed() ? parker::ctl::Question::stats : parker::ctl::Question::list;
  (void)list;
  auto timeout = std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
  parker::ctl::Answer answer = parker::ctl::ask_parker(socket_path, question, timeout);
  switch (answer.status) {
    case parker::ctl::Answer::Status::ok:
      std::cout << answer.text;
      if (!answer.text.empty() && answer.text.back() != '\n') std::cout << '\n';
      std::cout.flush();
      return std::cout.good() ? 0 : kExitFailed;
    case parker::ctl::Answer::Status::unreachable:
      spdlog::error("{}", answer.text);
      return kExitUnreachable;
    case parker::ctl::Answer::Status::failed:
      spdlog::error("{}", answer.text);
      return kExitFailed;
  }
  return kExitFailed;
}
