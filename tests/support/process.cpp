#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace parker::test {

// PARKER_TEST_BIN_DIR runs the tests against other builds of the programs (an older commit's,
// to see a test fail before its fix).
std::string program_path(const std::string& name) {
  const char* dir = std::getenv("PARKER_TEST_BIN_DIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : PARKER_BIN_DIR) + "/" + name;
}

namespace {

std::pair<UniqueFd, UniqueFd> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

Process::Process(std::vector<std::string> argv, SpawnOptions options) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  std::pair<UniqueFd, UniqueFd> in, out;
  if (options.pipe_stdin) {
    in = make_pipe();
    posix_spawn_file_actions_adddup2(&actions, in.first.get(), 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  if (options.pipe_stdout) {
    out = make_pipe();
    posix_spawn_file_actions_adddup2(&actions, out.second.get(), 1);
    if (options.merge_stderr) posix_spawn_file_actions_adddup2(&actions, out.second.get(), 2);
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed");
  stdin_ = std::move(in.second);
  stdout_ = std::move(out.first);
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    (void)wait(5s);
  }
}

void Process::write_stdin(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(stdin_.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("write to child's stdin failed");
    done += static_cast<std::size_t>(n);
  }
}

bool Process::read_some(std::chrono::milliseconds timeout) {
  if (!stdout_) return false;
  pollfd p{stdout_.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (rc <= 0) return false;
  char buf[4096];
  ssize_t n = ::read(stdout_.get(), buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && errno == EINTR) return true;
    stdout_.reset();
    return false;
  }
  output_.append(buf, static_cast<std::size_t>(n));
  return true;
}

bool Process::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (output_.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !stdout_) return false;
    read_some(left);
  }
  return true;
}

void Process::drain_output(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (stdout_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    read_some(left);
  }
}

void Process::signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

bool Process::running() {
  if (reaped_) return false;
  pid_t r = ::waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

int exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
  return -1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TempDir::TempDir() {
  char templ[] = "/tmp/parker-test-XXXXXX";
  if (::mkdtemp(templ) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult run_command(const std::string& command_line, std::chrono::milliseconds timeout) {
  Process p({"/bin/sh", "-c", command_line});
  p.drain_output(timeout);
  auto status = p.wait(timeout);
  if (!status) {
    p.signal(SIGKILL);
    return {-1, p.output()};
  }
  return {exit_code(*status), p.output()};
}

bool gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::string stat = run_command("cat /proc/" + std::to_string(pid) + "/stat").output;
  std::size_t paren = stat.rfind(')');
  return paren == std::string::npos || (paren + 2 < stat.size() && stat[paren + 2] == 'Z');
}

std::optional<pid_t> find_take_over_parker(const std::string& socket) {
  auto found = run_command("pgrep -f -- '--socket " + socket + " --take-over'");
  if (found.code != 0) return std::nullopt;
  return static_cast<pid_t>(std::stol(found.output));
}

StrayProcess::~StrayProcess() {
  ::kill(pid_, stop_signal_);
  eventually([&] { return gone(pid_); }, std::chrono::seconds(20));
}

}  // namespace parker::test
