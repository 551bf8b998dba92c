// parker: the daemon. Parse options, set up logging and limits, build the service, run it.
#include <signal.h>
#include <spawn.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <filesystem>

#include "capacity.hpp"
#include "daemon.hpp"
#include "logging.hpp"
#include "metrics_server.hpp"
#include "options.hpp"
#include "service_notifier.hpp"
#include "systemd.hpp"
#include "keeper_link.hpp"
#include "take_over.hpp"

namespace {

using namespace parker::daemon;

// The path a socket from systemd is bound to, for the log ("fd 3" if it has none).
std::string socket_name(int fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || len <= offsetof(sockaddr_un, sun_path) ||
      addr.sun_family != AF_UNIX) {
    return "fd " + std::to_string(fd);
  }
  std::string path(addr.sun_path, len - offsetof(sockaddr_un, sun_path));
  if (!path.empty() && path[0] == '\0') path[0] = '@';
  while (!path.empty() && path.back() == '\0') path.pop_back();
  return path;
}

// Socket activation: the one Unix stream listener systemd passed, if any, into `out`, and
// its path into config.socket_path (for the log). False (logged) when what was passed cannot
// be used.
bool take_activated_socket(parker::UniqueFd& out, Config& config) {
  systemd::ListenFds passed = systemd::listen_fds();
  if (!passed.problem.empty()) {
    spdlog::critical("socket activation: {}", passed.problem);
    return false;
  }
  if (passed.fds.empty()) return true;
  if (passed.fds.size() != 1) {
    spdlog::critical("socket activation: {} sockets passed; parker listens on exactly one", passed.fds.size());
    return false;
  }
  int fd = passed.fds[0].get();
  int type = 0, listening = 0, domain = 0;
  socklen_t len = sizeof type;
  (void)::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  len = sizeof listening;
  (void)::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  len = sizeof domain;
  (void)::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
  if (domain != AF_UNIX || type != SOCK_STREAM || listening == 0) {
    spdlog::critical("socket activation: fd {} is not a listening Unix stream socket (ListenStream= a path)", fd);
    return false;
  }
  config.socket_path = socket_name(fd);
  out = std::move(passed.fds[0]);
  return true;
}

// For STATUS=: what `systemctl status parker` shows.
std::string status_line(Daemon& daemon) {
  std::uint64_t wakes = 0;
  for (auto v : daemon.counters().wakes) wakes += v;
  return fmt::format("{} parked; {} parks, {} wakes so far", daemon.parked_total(), daemon.counters().parks_total,
                     wakes);
}

// SIGUSR2: this parker starts its successor — its own binary (as installed now: an upgrade
// takes effect) with the same arguments plus --take-over — which takes everything over;
// this one then exits. Under systemd the successor is the service's main process from now.
struct Successor {
  std::string exe;                // the binary's path, read at startup
  std::vector<std::string> argv;  // our arguments, plus --take-over
};

void start_successor(const Successor& successor) {
  std::vector<char*> argv;
  for (const auto& a : successor.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (int rc = ::posix_spawn(&pid, successor.exe.c_str(), nullptr, nullptr, argv.data(), environ); rc != 0) {
    spdlog::error("SIGUSR2: cannot start the successor {}: {}", successor.exe, std::strerror(rc));
    return;
  }
  spdlog::info("SIGUSR2: started the successor {} (pid {}); handing over to it", successor.exe, pid);
  if (auto e = systemd::notify(fmt::format("MAINPID={}", pid)); e.failed()) {
    spdlog::warn("cannot tell the service manager the successor's pid: {}", parker::describe(e));
  }
}

Successor successor_of(int argc, char** argv) {
  Successor s;
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  s.exe = n > 0 ? std::string(exe, static_cast<std::size_t>(n)) : std::string(argv[0]);
  bool has_flag = false;
  for (int i = 0; i < argc; ++i) {
    s.argv.emplace_back(argv[i]);
    has_flag = has_flag || s.argv.back() == "--take-over";
  }
  if (!has_flag) s.argv.emplace_back("--take-over");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
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

  Config config = options.config;
  parker::UniqueFd activated;
  if (!take_activated_socket(activated, config)) return 1;

  // A successor takes everything from the parker running at the same socket before it
  // starts: the listening socket, every parked and held connection.
  TakenOver taken;
  if (options.take_over) {
    if (activated) {
      spdlog::critical("--take-over with a socket from systemd: a successor takes its predecessor's socket");
      return 1;
    }
    taken = take_over(config.socket_path, static_cast<std::uint32_t>(Capacity(fd_limit).budget() + 1));
    if (!taken.error.empty()) {
      spdlog::critical("cannot take over from the parker at {}: {}", config.socket_path, taken.error);
      return 1;
    }
  }
  const Successor successor = successor_of(argc, argv);

  // --keeper: the keeper holds a copy of every parked connection. One that holds some when a
  // parker starts (not as a successor) holds what a crashed parker left: it is restored below.
  std::function<std::unique_ptr<KeeperLink>()> open_keeper;
  std::unique_ptr<KeeperLink> keeper;
  std::uint64_t keeper_holds = 0;
  if (options.keeper) {
    std::string keeper_exe = std::filesystem::path(successor.exe).parent_path() / "parker-keeper";
    open_keeper = [path = options.keeper_socket, keeper_exe] {
      std::uint64_t ignored = 0;
      std::string why;
      auto link = KeeperLink::open(path, keeper_exe, ignored, why);
      if (!link) spdlog::error("no keeper: {}", why);
      return link;
    };
    std::string why;
    keeper = KeeperLink::open(options.keeper_socket, keeper_exe, keeper_holds, why);
    if (!keeper) {
      spdlog::critical("--keeper: {}", why);
      return 1;
    }
    spdlog::info("keeping a copy of every parked connection in the keeper at {}", options.keeper_socket);
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  int code = 0;
  {
    Daemon daemon(&loop, config, fd_limit, [log] {
      if (auto e = reopen_log_file(log); !e.empty()) spdlog::error("cannot reopen the log file: {}", e);
    });
    if (activated) daemon.adopt_listener(std::move(activated));
    if (taken.listener) daemon.take_over_listener(std::move(taken.listener));
    if (keeper) daemon.use_keeper(std::move(keeper), open_keeper);
    MetricsServer metrics(&loop, [&daemon] { return daemon.stats_text(); });
    ServiceNotifier notifier(&loop, [&daemon] { return status_line(daemon); });
    // STOPPING=1 at the first TERM/INT; the metrics listener would keep the loop running.
    daemon.on_stopping([&] {
      notifier.stopping();
      metrics.close();
    });
    // systemctl reload sends USR2: start the successor, which takes everything over.
    uv_signal_t usr2{};
    uv_signal_init(&loop, &usr2);
    usr2.data = const_cast<Successor*>(&successor);
    uv_signal_start(&usr2, [](uv_signal_t* handle, int) { start_successor(*static_cast<const Successor*>(handle->data)); },
                    SIGUSR2);
    uv_unref(reinterpret_cast<uv_handle_t*>(&usr2));
    parker::Error e;
    if (!options.metrics_listen.empty() && (e = metrics.listen(options.metrics_listen)).failed()) {
      spdlog::critical("cannot serve metrics on {}: {}", options.metrics_listen, parker::describe(e));
      code = 1;
    } else if (!options.metrics_listen.empty()) {
      spdlog::info("metrics on http://{}/metrics", metrics.address());
    }
    if (code == 0) {
      if (e = daemon.start(); e.failed()) {
        spdlog::critical("cannot listen on {}: {}", config.socket_path, parker::describe(e));
        code = 1;
      } else {
        if (options.take_over) {
          daemon.adopt_counters(taken.counters);
          daemon.adopt_rules(taken.rules);
          daemon.adopt_handover(std::move(taken.items), std::move(taken.closed));
        }
        if (!options.take_over && keeper_holds != 0) {
          std::vector<HandoverItem> restored;
          std::string why = daemon.keeper()->restore(restored);
          if (!why.empty()) spdlog::error("the keeper could not restore what it holds: {}", why);
          spdlog::warn("the last parker did not stop cleanly: {} connection(s) restored from the keeper",
                       restored.size());
          daemon.adopt_handover(std::move(restored), {});
        }
        notifier.ready();
        code = daemon.run();
      }
    }
    notifier.close();
    metrics.close();
    uv_close(reinterpret_cast<uv_handle_t*>(&usr2), nullptr);
    // The daemon closed its handles; ours close in this run. A busy loop here would mean a
    // leaked handle.
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&loop) != 0) spdlog::warn("libuv loop still had open handles at exit");
  spdlog::shutdown();
  return code;
}
