#include "heavy/app.hpp"

#include <signal.h>
#include <uv.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>

#include "heavy/parking.hpp"
#include "heavy/server.hpp"
#include "heavy/snapshot.hpp"
#include "log_format.hpp"

namespace heavy {

namespace {

struct SignalWatch {
  uv_signal_t term{};
  uv_signal_t interrupt{};
  Server* server = nullptr;
  Parking* parking = nullptr;  // null without parker
  bool closed = false;
};

void on_signal(uv_signal_t* handle, int signum) noexcept {
  auto* watch = static_cast<SignalWatch*>(handle->data);
  Server* server = watch->server;
  // TERM is a graceful restart when parker is there: every connection and the listening
  // socket go to parker for the next process; then the server stops.
  if (signum == SIGTERM && !server->stopping() && watch->parking != nullptr &&
      watch->parking->begin_handover([server] { server->shutdown(); })) {
    spdlog::info("SIGTERM: handing every connection over to parker");
    return;
  }
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
  // The project's one log format (and the journal's under systemd).
  (void)parker::logs::stderr_logger("heavy_server", config.log_level);
}

// CLIENT IDs double as parker ids, unique in the pool across restarts: a process starts at a
// time-based value above anything an earlier one handed out (unless that one accepted more
// than 1024 connections per millisecond of its life).
std::uint64_t time_based_first_client_id() {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  return static_cast<std::uint64_t>(ms) * 1024;
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
  options.client_limits = config.client_limits;
  const bool parking_on = !config.parker_sockets.empty();
  if (parking_on) options.first_client_id = time_based_first_client_id();
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

    ParkingOptions parking_options;
    parking_options.socket_paths = config.parker_sockets;
    parking_options.pool = config.pool;
    parking_options.park_after_ms = config.park_after_ms;
    parking_options.startup_timeout_ms = config.startup_timeout_ms;
    std::optional<Parking> parking;
    if (parking_on) parking.emplace(server, parking_options);
    watch.parking = parking ? &*parking : nullptr;
    server.set_on_stopped([&watch, &parking] {
      close_signals(watch);
      if (parking) parking->close();
    });

    // Listening waits for parker's answer: after a graceful restart it holds our listener.
    auto start_listening = [&server, &exit_code](parker::UniqueFd handed_over) {
      const bool adopted = static_cast<bool>(handed_over);
      std::string failed = adopted ? server.adopt_listener(std::move(handed_over)) : server.listen();
      if (!failed.empty()) {
        spdlog::critical("{}", failed);
        exit_code = 1;
        server.shutdown();
        return;
      }
      // Logged once everything is set up: tests take this line as "ready" (and the fd baseline).
      spdlog::info("listening on {}{}", server.listening_address(), adopted ? " (handed over by parker)" : "");
    };
    if (parking) {
      parking->start(start_listening);
    } else {
      start_listening({});
    }

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
