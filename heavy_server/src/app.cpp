#include "heavy/app.hpp"

#include <signal.h>
#include <uv.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "heavy/server.hpp"
#include "heavy/snapshot.hpp"

namespace heavy {

namespace {

struct SignalWatch {
  uv_signal_t term{};
  uv_signal_t interrupt{};
  Server* server = nullptr;
  bool closed = false;
};

void on_signal(uv_signal_t* handle, int signum) noexcept {
  auto* watch = static_cast<SignalWatch*>(handle->data);
  spdlog::info("{}: shutting down{}", signum == SIGTERM ? "SIGTERM" : "SIGINT",
               watch->server->stopping() ? " now" : " gracefully");
  watch->server->shutdown();
}

void close_signals(SignalWatch& watch) {
  if (watch.closed) return;
  watch.closed = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&watch.term), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch.interrupt), nullptr);
}

void setup_logging(const Config& config) {
  auto logger = spdlog::stderr_color_mt("heavy_server");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
}

// Runs the loop until every handle is closed, then closes it.
void finish_loop(uv_loop_t& loop) {
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) spdlog::warn("event loop closed with handles still open");
}

}  // namespace

int run_app(const Config& config) {
  setup_logging(config);
  ::signal(SIGPIPE, SIG_IGN);  // writes use MSG_NOSIGNAL; this covers everything else

  uv_loop_t loop;
  if (int rc = uv_loop_init(&loop); rc != 0) {
    spdlog::critical("uv_loop_init: {}", uv_strerror(rc));
    return 1;
  }
  ServerOptions options;
  options.bind = config.bind;
  options.port = config.port;
  options.session_bytes = config.session_bytes;
  int exit_code = 0;
  {
    Server server(&loop, options);
    std::string error;
    if (!config.snapshot_path.empty()) {
      SnapshotResult loaded =
          load_snapshot(server.keyspace(), config.snapshot_path, snapshot_clock_now(static_cast<std::int64_t>(uv_now(&loop))));
      if (!loaded.ok) {
        error = "cannot load snapshot: " + loaded.error;
      } else if (loaded.missing) {
        spdlog::info("snapshot {} does not exist yet; starting empty", config.snapshot_path);
      } else {
        spdlog::info("loaded {} key(s) from {}", loaded.keys, config.snapshot_path);
      }
    }
    if (error.empty()) error = server.listen();
    if (!error.empty()) {
      spdlog::critical("{}", error);
      server.shutdown();
      finish_loop(loop);
      return 1;
    }

    SignalWatch watch;
    watch.server = &server;
    uv_signal_init(&loop, &watch.term);
    uv_signal_init(&loop, &watch.interrupt);
    watch.term.data = watch.interrupt.data = &watch;
    uv_signal_start(&watch.term, on_signal, SIGTERM);
    uv_signal_start(&watch.interrupt, on_signal, SIGINT);
    server.set_on_stopped([&watch] { close_signals(watch); });
    // Logged once everything is set up: tests take this line as "ready" (and the fd baseline).
    spdlog::info("listening on {}", server.listening_address());
    spdlog::debug("parking not wired in yet: parker {}, pool {}, park after {} ms", config.parker_socket,
                  config.pool, config.park_after_ms);

    uv_run(&loop, UV_RUN_DEFAULT);

    if (!config.snapshot_path.empty()) {
      SnapshotResult saved = save_snapshot(server.keyspace(), config.snapshot_path,
                                           snapshot_clock_now(static_cast<std::int64_t>(uv_now(&loop))));
      if (saved.ok) {
        spdlog::info("saved {} key(s) to {}", saved.keys, config.snapshot_path);
      } else {
        spdlog::error("cannot save snapshot: {}", saved.error);
        exit_code = 1;
      }
    }
  }
  finish_loop(loop);
  spdlog::info("bye");
  return exit_code;
}

}  // namespace heavy
