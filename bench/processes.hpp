// Child processes of the harness, and what /proc says about a process.
//
// Every child is killed when the harness dies (PR_SET_PDEATHSIG) and is stopped and reaped
// when its ChildProcess goes away, so no scenario can leave a server running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace parker::bench {

using namespace std::chrono_literals;

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs `body` in a forked copy of this process; its return value is the exit code.
  // The child never returns into the caller (it _exit()s, also on an exception). In the
  // child every fd other than 0, 1, 2 and `keep` is closed first, so a child never holds
  // another's pipe or socket open by accident.
  [[nodiscard]] static ChildProcess fork_function(const std::function<int()>& body,
                                                  std::vector<int> keep = {});
  // Starts `argv[0]` (a path) with stdout and stderr appended to `log_file`.
  [[nodiscard]] static ChildProcess spawn(const std::vector<std::string>& argv,
                                          const std::filesystem::path& log_file);

  // Takes over stopping and reaping a child forked elsewhere.
  [[nodiscard]] static ChildProcess adopt(pid_t pid) { return ChildProcess(pid); }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] bool running();
  // Waits up to `timeout` for the exit; returns the wait status, nullopt if still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; always reaps. Returns the wait status.
  std::optional<int> stop(std::chrono::milliseconds grace = 2s);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// Resident memory of `pid` in bytes (VmRSS), or nullopt if it is gone.
[[nodiscard]] std::optional<std::uint64_t> rss_bytes(pid_t pid);
// User + system CPU time `pid` has used, in seconds (clock-tick resolution).
[[nodiscard]] std::optional<double> cpu_seconds(pid_t pid);
// CPU time every thread of `pid` has run, in seconds, from /proc/PID/task/*/schedstat
// (nanosecond resolution: fit for intervals of milliseconds), or nullopt if it is gone.
[[nodiscard]] std::optional<double> scheduled_cpu_seconds(pid_t pid);
// Number of open fds of `pid`.
[[nodiscard]] std::optional<std::size_t> open_fd_count(pid_t pid);

// The full path of `name` found on PATH, or nullopt.
[[nodiscard]] std::optional<std::filesystem::path> find_in_path(const std::string& name);

// Runs a command to completion (bounded by `timeout`, then killed) and returns its exit
// code (-1 if killed or not run) and its stdout; stderr goes to `stderr_log` if given.
struct CommandOutput {
  int code = -1;
  std::string out;
};
[[nodiscard]] CommandOutput run_capture(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout,
                                        const std::filesystem::path& stderr_log = {});

// Seconds on the monotonic clock, for measuring.
[[nodiscard]] double now_seconds() noexcept;

}  // namespace parker::bench
