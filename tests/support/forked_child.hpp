// Test support: a forked child process running a lambda, a guard that kills and reaps it,
// and a pipe for the child to say it is ready — for tests that SIGKILL a real peer.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

#include "parker/unique_fd.hpp"
#include "support/process.hpp"

namespace parker::test {

using namespace std::chrono_literals;

// Runs `body` in a forked child (which exits with its return value) and returns its pid.
template <class Body>
inline pid_t fork_child(Body body) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 98;
    }
    ::_exit(code);
  }
  return pid;
}

// Kills and reaps a forked child however the test ends.
struct ChildGuard {
  pid_t pid;
  ~ChildGuard() {
    if (pid > 0 && ::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
  }
};

inline int wait_child(pid_t pid) {
  if (pid <= 0) return -101;  // never kill(-1) or kill(0) below
  int status = 0;
  for (int i = 0; i < 1000; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return exit_code(status);
    ::usleep(10'000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -100;
}

// A pipe the child uses to say it is ready.
struct ReadySignal {
  UniqueFd read, write;
  ReadySignal() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
  void notify() { (void)!::write(write.get(), "r", 1); }
  bool wait(std::chrono::milliseconds timeout = 10s) {
    pollfd p{read.get(), POLLIN, 0};
    char c = 0;
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && ::read(read.get(), &c, 1) == 1;
  }
};


}  // namespace parker::test
