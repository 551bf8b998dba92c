// Real processes for integration tests: start a program from build/bin, talk to it through
// pipes, signal it, and always reap it (the destructor kills what is still running).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "parker/unique_fd.hpp"

namespace parker::test {

using namespace std::chrono_literals;

// Path of a program built by this project: build/bin/<name> (or $PARKER_TEST_BIN_DIR/<name>).
[[nodiscard]] std::string program_path(const std::string& name);

struct SpawnOptions {
  bool pipe_stdin = false;   // else /dev/null
  bool pipe_stdout = true;   // else inherited
  bool merge_stderr = true;  // stderr into the stdout pipe (else inherited)
};

class Process {
 public:
  Process(std::vector<std::string> argv, SpawnOptions options = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int stdin_fd() const noexcept { return stdin_.get(); }
  void close_stdin() { stdin_.reset(); }
  void write_stdin(const std::string& text);

  // Reads the child's stdout until `needle` has appeared (true) or `timeout` passed (false).
  // Everything read so far stays available through output().
  bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout = 10s);
  // Reads until end of output or timeout.
  void drain_output(std::chrono::milliseconds timeout = 10s);
  [[nodiscard]] const std::string& output() const noexcept { return output_; }

  void signal(int sig);
  // Waits for exit; returns the exit status (as from waitpid) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout = 10s);
  [[nodiscard]] bool running();

 private:
  bool read_some(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  UniqueFd stdin_;
  UniqueFd stdout_;
  std::string output_;
};

// Exit code of a normally exited process status, or -1 (-signal for a killed one).
[[nodiscard]] int exit_code(int wait_status);

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10s);

// Gone, or a zombie no one has reaped yet (it was re-parented when its parent exited).
[[nodiscard]] bool gone(pid_t pid);

// The parker running with `--take-over` on `socket` — the successor a SIGUSR2 started, which
// is not our child — found by its command line; nullopt if there is none.
[[nodiscard]] std::optional<pid_t> find_take_over_parker(const std::string& socket);

// A process that is not our child, stopped whatever happens in the test: signalled with
// `stop_signal` and waited for (20 s at most) when this goes out of scope.
class StrayProcess {
 public:
  StrayProcess(pid_t pid, int stop_signal) : pid_(pid), stop_signal_(stop_signal) {}
  ~StrayProcess();
  StrayProcess(const StrayProcess&) = delete;
  StrayProcess& operator=(const StrayProcess&) = delete;

 private:
  pid_t pid_;
  int stop_signal_;
};

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command line to completion; returns its exit code and stdout+stderr.
struct CommandResult {
  int code = -1;
  std::string output;
};
CommandResult run_command(const std::string& command_line, std::chrono::milliseconds timeout = 60s);

}  // namespace parker::test
