// What holding a passed fd's copy costs by itself (issue 8): protocol 1.1 makes parker keep
// its copy of every woken fd until the owner's ACK (and the client library its copy of every
// parked fd until PARKED), so the close that 1.0 does right after sendmsg comes later, after
// the receiver has taken the fd. Same syscall, same refcounts — but not the same price.
//
// A sender holds M connected loopback TCP sockets. Each repetition it sends a dup of each
// (the copy it keeps) to a receiver process, 253 a message, and waits for the receiver's
// one-byte answer to each message (the receiver closes what it got, as an owner adopting it
// would not, but the sender's close is what is timed). The sender closes its copies either
// right after each sendmsg (`at_once`, 1.0) or once every answer is in (`after_answer`,
// 1.1). CPU time of the closes alone (CLOCK_THREAD_CPUTIME_ID), per close; the two ways
// alternate repetition by repetition.
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "loopback.hpp"
#include "parker/fd_passing.hpp"
#include "processes.hpp"
#include "progress.hpp"
#include "scenario.hpp"

namespace parker::bench {
namespace {

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// The receiver: takes each message's fds, closes them, answers one byte. Ends at EOF.
int receiver_main(int socket) {
  std::vector<UniqueFd> fds;
  for (;;) {
    std::byte byte[1];
    fds.clear();
    auto got = receive_with_fds(socket, byte, fds);
    if (!got.ok()) return 2;
    if (got.value == 0) return 0;
    fds.clear();
    const std::byte answer{'a'};
    if (send_all_with_fds(socket, std::span(&answer, 1), {}).failed()) return 3;
  }
}

void wait_answer(int socket) {
  std::byte byte[1];
  std::vector<UniqueFd> none;
  auto got = receive_with_fds(socket, byte, none);
  if (!got.ok() || got.value == 0) throw std::runtime_error("the receiver went away");
}

// One repetition: CPU nanoseconds per close of the sender's copies.
double one_round(int socket, const std::vector<UniqueFd>& sockets, bool after_answer) {
  std::vector<UniqueFd> copies;
  copies.reserve(sockets.size());
  double closing = 0;
  std::vector<int> raw;
  for (std::size_t at = 0; at < sockets.size();) {
    const std::size_t end = std::min(sockets.size(), at + kMaxFdsPerMessage);
    const std::size_t first = copies.size();
    raw.clear();
    for (std::size_t i = at; i < end; ++i) {
      copies.emplace_back(::fcntl(sockets[i].get(), F_DUPFD_CLOEXEC, 0));
      if (!copies.back()) throw std::runtime_error(std::string("dup: ") + std::strerror(errno));
      raw.push_back(copies.back().get());
    }
    const std::byte byte{'p'};
    if (Error e = send_all_with_fds(socket, std::span(&byte, 1), raw); e.failed()) {
      throw std::runtime_error("sendmsg: " + describe(e));
    }
    if (!after_answer) {
      const double t = thread_cpu_ns();
      for (std::size_t i = first; i < copies.size(); ++i) copies[i].reset();
      closing += thread_cpu_ns() - t;
    }
    wait_answer(socket);
    at = end;
  }
  const double t = thread_cpu_ns();
  copies.clear();  // the copies not closed yet (all of them, after_answer)
  closing += thread_cpu_ns() - t;
  return closing / static_cast<double>(sockets.size());
}

}  // namespace

void run_late_close(const Config& config, ScenarioReport& report) {
  const std::size_t m = config.pick<std::size_t>(500, 5000, 5000);
  const int reps = config.reps(3, 12);
  report.param("connections", std::to_string(m));
  report.param("repetitions", std::to_string(reps));
  report.param("socket", "AF_UNIX SOCK_STREAM socketpair; 253 fds a message, each answered");

  UniqueFd listener = listen_tcp("127.0.0.1", 0);
  const std::uint16_t port = local_port(listener.get());
  std::vector<UniqueFd> ours, theirs;  // both ends of each connection, in this process
  ours.reserve(m);
  theirs.reserve(m);
  for (std::size_t i = 0; i < m; ++i) {
    theirs.push_back(connect_tcp("127.0.0.1", port));
    ours.emplace_back(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!ours.back()) throw std::runtime_error(std::string("accept: ") + std::strerror(errno));
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  UniqueFd mine(pair[0]), child_end(pair[1]);
  const int child = child_end.get();
  ChildProcess receiver = ChildProcess::fork_function([child] { return receiver_main(child); }, {child});
  child_end.reset();

  std::vector<double> at_once, after_answer, ratio;
  Progress progress("late_close", static_cast<std::uint64_t>(reps) * 2);
  for (int rep = 0; rep < reps; ++rep) {
    double a = 0, b = 0;
    for (int turn = 0; turn < 2; ++turn) {
      const bool late = (turn + rep) % 2 == 1;
      (late ? b : a) = one_round(mine.get(), ours, late);
      progress.advance();
    }
    at_once.push_back(a);
    after_answer.push_back(b);
    ratio.push_back(b / a);
  }
  progress.finish();
  report.add("close_ns", {{"when", "at_once"}}, "ns", at_once);
  report.add("close_ns", {{"when", "after_answer"}}, "ns", after_answer);
  report.add("late_vs_at_once", {}, "x", ratio);
  report.note("CPU time of the sender's close of its copy of a passed TCP socket: right after the "
              "sendmsg that passed it (protocol 1.0: parker closes a woken fd as it writes the WAKE) "
              "or once the receiver has taken it and answered (1.1: parker closes on the ACK, the "
              "client library on PARKED). The difference is what keeping the copy costs by itself.");
  mine.reset();  // EOF: the receiver ends
  receiver.stop(2s);
}

}  // namespace parker::bench
