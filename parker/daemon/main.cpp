// parker: the daemon. Parse options, set up logging and limits, build the service, run it.
#include <signal.h>
#include <uv.h>

#include <spdlog/spdlog.h>

#include "capacity.hpp"
#include "daemon.hpp"
#include "logging.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
  using namespace parker::daemon;
  auto parsed = parse_options(argc, argv);
  if (!parsed.options) return parsed.exit_code;
  Options& options = *parsed.options;

  LogSettings log{options.log_level, options.log_file};
  if (auto e = setup_logging(log); !e.empty()) {
    fmt::print(stderr, "parker: cannot open log file {}: {}\n", options.log_file, e);
    return 1;
  }
  // Writes to a peer that went away must fail with EPIPE, not kill the daemon.
  ::signal(SIGPIPE, SIG_IGN);
  std::size_t fd_limit = raise_fd_limit();

  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = 0;
  {
    Daemon daemon(&loop, options.config, fd_limit, [log] {
      if (auto e = reopen_log_file(log); !e.empty()) spdlog::error("cannot reopen the log file: {}", e);
    });
    if (auto e = daemon.start(); e.failed()) {
      spdlog::critical("cannot listen on {}: {}", options.config.socket_path, parker::describe(e));
      code = 1;
    } else {
      code = daemon.run();
    }
  }
  // Every handle was closed by the daemon; a busy loop here would mean a leaked handle.
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) spdlog::warn("libuv loop still had open handles at exit");
  spdlog::shutdown();
  return code;
}
