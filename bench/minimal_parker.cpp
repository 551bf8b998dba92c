// The minimal parker, written straight on the syscalls: the floor parker is measured
// against. Two processes:
//   watcher — holds parked sockets in its epoll; when one becomes readable (or hangs up) it
//             takes it out and passes it to the server over a Unix socket (SCM_RIGHTS,
//             up to 253 per message), closing its own copy;
//   server  — accepts on two ports: "park" connections go straight to the watcher, "live"
//             ones stay in its own epoll. A woken socket gets its request read and answered,
//             then goes back to the watcher.
// No library, no allocation per connection, nothing but epoll_wait/accept4/read/write/
// sendmsg/recvmsg: whatever parker adds on top shows up in the comparison.
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "loopback.hpp"
#include "parker/unique_fd.hpp"
#include "parking_backend.hpp"
#include "processes.hpp"

namespace parker::bench {
namespace {

constexpr int kMaxFds = 253;

// Counters the children update and the harness reads: anonymous shared memory.
struct Shared {
  std::atomic<std::uint64_t> parked{0};
  std::atomic<int> watcher_ready{0};
  std::atomic<int> server_ready{0};
};

// ---- the two processes, straight on the syscalls ----------------------------------------

void send_fds(int sock, const int* fds, std::size_t count) {
  for (std::size_t done = 0; done < count;) {
    std::size_t n = std::min<std::size_t>(count - done, kMaxFds);
    char byte = 'p';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(c), fds + done, sizeof(int) * n);
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) ::_exit(3);  // the peer is gone: so are we
    for (std::size_t i = 0; i < n; ++i) ::close(fds[done + i]);
    done += n;
  }
}

// Every fd waiting on `sock`, without blocking. False when the peer has gone.
bool receive_fds(int sock, std::vector<int>& out) {
  for (;;) {
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        out.push_back(fd);
      }
    }
  }
}

int watcher_main(int server, Shared* shared) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN, {.fd = server}};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, server, &ev);
  shared->watcher_ready = 1;
  std::vector<epoll_event> events(512);
  std::vector<int> arrived, woken;
  for (;;) {  // ends when the server goes away (or the harness: PR_SET_PDEATHSIG)
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) return 1;
    woken.clear();
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == server) {
        arrived.clear();
        if (!receive_fds(server, arrived)) return 0;
        for (int parked : arrived) {
          epoll_event e{EPOLLIN | EPOLLRDHUP, {.fd = parked}};
          ::epoll_ctl(ep, EPOLL_CTL_ADD, parked, &e);
        }
        shared->parked += arrived.size();
      } else {
        ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        woken.push_back(fd);
      }
    }
    if (!woken.empty()) {
      shared->parked -= woken.size();
      send_fds(server, woken.data(), woken.size());
    }
  }
}

// Reads what the client sent and echoes it back. False when the connection is finished.
bool serve(int fd) {
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n < 0) return errno == EAGAIN || errno == EINTR;  // nothing after all: park it again
  if (n == 0) return false;
  return ::write(fd, buf, static_cast<std::size_t>(n)) == n;
}

int server_main(int park_listener, int live_listener, int watcher, Shared* shared) {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (int fd : {park_listener, live_listener, watcher}) {
    epoll_event ev{EPOLLIN, {.fd = fd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  shared->server_ready = 1;
  std::vector<epoll_event> events(512);
  std::vector<int> fds, back;
  for (;;) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == park_listener || fd == live_listener) {
        fds.clear();
        for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) fds.push_back(c);
        if (fd == park_listener) {
          send_fds(watcher, fds.data(), fds.size());
        } else {
          for (int c : fds) {
            epoll_event e{EPOLLIN, {.fd = c}};
            ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
          }
        }
      } else if (fd == watcher) {
        fds.clear();
        back.clear();
        if (!receive_fds(watcher, fds)) return 0;
        for (int c : fds) {
          if (serve(c)) {
            back.push_back(c);
          } else {
            ::close(c);
          }
        }
        send_fds(watcher, back.data(), back.size());
      } else if (!serve(fd)) {
        ::close(fd);  // a live connection that ended
      }
    }
  }
}

// ---- the backend the harness drives -----------------------------------------------------

class MinimalParker final : public ParkingBackend {
 public:
  MinimalParker() {
    void* memory = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap failed");
    shared_ = new (memory) Shared();
  }
  ~MinimalParker() override {
    stop();
    ::munmap(shared_, sizeof(Shared));
  }

  std::string name() const override { return "minimal"; }

  void start(const Config&) override {
    UniqueFd park = listen_tcp("127.0.0.1", 0);
    UniqueFd live = listen_tcp("127.0.0.1", 0);
    park_port_ = local_port(park.get());
    live_port_ = local_port(live.get());
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      throw std::runtime_error(fmt::format("socketpair: {}", std::strerror(errno)));
    }
    UniqueFd to_server(pair[0]), to_watcher(pair[1]);
    Shared* shared = shared_;
    int w = to_server.get(), p = park.get(), l = live.get(), s = to_watcher.get();
    watcher_ = ChildProcess::fork_function([=] { return watcher_main(w, shared); }, {w});
    server_ = ChildProcess::fork_function([=] { return server_main(p, l, s, shared); }, {p, l, s});
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (shared_->watcher_ready == 0 || shared_->server_ready == 0) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("minimal parker did not start");
      std::this_thread::sleep_for(1ms);
    }
  }

  void stop() override {
    server_.stop(1s);
    watcher_.stop(1s);
  }

  std::uint16_t park_port() const override { return park_port_; }
  std::uint16_t live_port() const override { return live_port_; }
  std::uint64_t parked_count() const override { return shared_->parked.load(std::memory_order_acquire); }
  pid_t watcher_pid() const override { return watcher_.pid(); }
  pid_t server_pid() const override { return server_.pid(); }

 private:
  Shared* shared_ = nullptr;
  ChildProcess watcher_;
  ChildProcess server_;
  std::uint16_t park_port_ = 0;
  std::uint16_t live_port_ = 0;
};

}  // namespace

std::unique_ptr<ParkingBackend> make_minimal_parker() { return std::make_unique<MinimalParker>(); }

}  // namespace parker::bench
