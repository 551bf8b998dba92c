// Parker itself behind the ParkingBackend contract (parking_backend.hpp): build/bin/parker
// on a socket in a scratch dir, and a probe server that parks through parker::Client
// (parker/client.hpp, protocol 1.1) or through a RawSession speaking 1.0 or 1.1
// (raw_session.hpp) — the same job as minimal_parker.cpp's two processes, so the two can be
// compared figure for figure, and 1.0 with 1.1.
//
// The probe server is one process with a hand-written epoll loop (the session is loop-
// agnostic): the two listeners, the live connections and the session's socket. A connection
// accepted on the park port is parked at once; a woken one has its request read and echoed
// and is parked again. Parks refused for lack of credit wait in a queue until credit comes.
//
// parked_count(): +1 when the PARK frame carrying the connection has been written whole to
// parker's socket, -1 on each wake or close — on 1.1 too, where PARKED confirms the park
// later: one rule for both versions keeps their comparison fair. (A probe sent right after
// that moment finds parker adding the fd to its epoll, which only adds to the measured wake:
// the figure can err on parker's cost side, never flatter it.)
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "loopback.hpp"
#include "parking_backend.hpp"
#include "processes.hpp"
#include "servers.hpp"

#if defined(BENCH_HAVE_PARKER_CLIENT)
#include "parker/client.hpp"
#include "raw_session.hpp"
#endif

namespace parker::bench {

#if defined(BENCH_HAVE_PARKER_CLIENT)
namespace {

struct Shared {
  std::atomic<std::uint64_t> parked{0};
  std::atomic<int> server_ready{0};
  std::atomic<int> server_failed{0};
  std::atomic<int> minor{-1};  // the protocol minor the session negotiated
  std::atomic<std::uint64_t> in_hand{0};  // waiting for credit + parks not yet confirmed
};

bool serve(int fd) {
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  return ::write(fd, buf, static_cast<std::size_t>(n)) == n;
}

// What the probe server's session callbacks act on.
struct ProbeState {
  Shared* shared = nullptr;
  std::deque<UniqueFd> waiting;  // to park, when credit allows
  std::uint64_t unwritten = 0;   // park() calls whose frame is not yet written whole

  ClientCallbacks callbacks() {
    ClientCallbacks callbacks;
    callbacks.on_wake = [this](WokenConnection woken) noexcept {
      shared->parked.fetch_sub(1, std::memory_order_acq_rel);
      if (serve(woken.fd.get())) waiting.push_back(std::move(woken.fd));
    };
    callbacks.on_closed = [this](std::uint64_t, protocol::CloseReason) noexcept {
      shared->parked.fetch_sub(1, std::memory_order_acq_rel);
    };
    callbacks.on_rejected = [this](RejectedPark park) noexcept {
      if (park.reason && *park.reason != protocol::RejectReason::no_credit) {
        shared->server_failed = 1;  // refused for a reason a benchmark must not hide
        return;
      }
      if (!park.reason) unwritten = 0;  // the connection died: nothing queued was written
      waiting.push_back(std::move(park.fd));
    };
    return callbacks;
  }
};

// The probe server's loop (see the file comment), for parker::Client or RawSession.
template <class Session, class Connect>
int probe_loop(Session& client, Connect connect, ProbeState& state, int park_listener, int live_listener) {
  Shared* shared = state.shared;
  std::deque<UniqueFd>& waiting = state.waiting;
  std::uint64_t& unwritten = state.unwritten;
  std::uint64_t next_id = 1;
  if (connect().failed()) return 2;

  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (int fd : {park_listener, live_listener}) {
    epoll_event ev{EPOLLIN, {.fd = fd}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  int watched = -1;
  bool watched_out = false;
  std::vector<epoll_event> events(512);
  bool ready_said = false;
  for (;;) {
    // Park what waits, as far as credit goes; then send it.
    while (!waiting.empty() && client.connected()) {
      if (client.park(waiting.front(), next_id, {}).failed()) break;  // ENOBUFS: wait for credit
      ++next_id;
      ++unwritten;
      waiting.pop_front();
    }
    client.flush();
    if (!client.has_queued() && !client.wants_write() && unwritten > 0) {
      shared->parked.fetch_add(unwritten, std::memory_order_acq_rel);
      unwritten = 0;
    }
    shared->in_hand.store(waiting.size() + client.unconfirmed_parks(), std::memory_order_release);
    if (client.connected() && !ready_said) {
      shared->minor = client.protocol_minor();
      shared->server_ready = 1;
      ready_said = true;
    }
    // Follow the client's socket (it changes on reconnect) and its write interest.
    if (client.fd() != watched || (watched >= 0 && client.wants_write() != watched_out)) {
      if (watched >= 0 && client.fd() != watched) ::epoll_ctl(ep, EPOLL_CTL_DEL, watched, nullptr);
      if (client.fd() >= 0) {
        epoll_event ev{static_cast<std::uint32_t>(EPOLLIN) | (client.wants_write() ? static_cast<std::uint32_t>(EPOLLOUT) : 0u),
                       {.fd = client.fd()}};
        if (::epoll_ctl(ep, EPOLL_CTL_MOD, client.fd(), &ev) != 0) ::epoll_ctl(ep, EPOLL_CTL_ADD, client.fd(), &ev);
      }
      watched = client.fd();
      watched_out = client.wants_write();
    }
    int timeout = -1;
    if (auto due = client.timer_deadline()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*due - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<std::int64_t>(0, left.count() + 1));
    }
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == park_listener || fd == live_listener) {
        for (int c; (c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          if (fd == park_listener) {
            waiting.emplace_back(c);
          } else {
            epoll_event e{EPOLLIN, {.fd = c}};
            ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
          }
        }
      } else if (fd == client.fd()) {
        if (events[i].events & EPOLLOUT) client.on_writable();
        if (fd == client.fd() && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) client.on_readable();
      } else if (!serve(fd)) {
        ::close(fd);  // a live connection that ended
      }
    }
    if (auto due = client.timer_deadline(); due && std::chrono::steady_clock::now() >= *due) client.on_timer();
  }
}

int probe_server_main(ParkerOwner owner, int park_listener, int live_listener, const std::string& socket,
                      Shared* shared) {
  ProbeState state;
  state.shared = shared;
  if (owner == ParkerOwner::client || owner == ParkerOwner::client_1_0) {
    Client client(state.callbacks());
    ClientOptions options;
    if (owner == ParkerOwner::client_1_0) options.max_minor = 0;
    return probe_loop(client, [&] { return client.connect(socket, "bench", options); }, state, park_listener,
                      live_listener);
  }
  RawSession session(state.callbacks(), owner == ParkerOwner::raw_1_0 ? 0 : 1);
  return probe_loop(session, [&] { return session.connect(socket, "bench"); }, state, park_listener, live_listener);
}

class ParkerBackend final : public ParkerDaemonBackend {
 public:
  explicit ParkerBackend(ParkerOwner owner) : owner_(owner) {
    void* memory = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap failed");
    shared_ = new (memory) Shared();
  }
  ~ParkerBackend() override {
    stop();
    ::munmap(shared_, sizeof(Shared));
  }

  std::string name() const override {
    switch (owner_) {
      case ParkerOwner::client: return "parker";
      case ParkerOwner::client_1_0: return "parker-client-1.0";
      case ParkerOwner::raw_1_0: return "parker-raw-1.0";
      case ParkerOwner::raw_1_1: return "parker-raw-1.1";
    }
    return "parker";
  }

  void start(const Config& config) override {
    shared_->parked = 0;
    shared_->server_ready = 0;
    shared_->server_failed = 0;
    shared_->minor = -1;
    shared_->in_hand = 0;
    dir_ = std::make_unique<ScratchDir>();
    daemon_ = start_parker(config, *dir_, name() == "parker" ? "bench-parker" : "bench-" + name());
    UniqueFd park = listen_tcp("127.0.0.1", 0);
    UniqueFd live = listen_tcp("127.0.0.1", 0);
    park_port_ = local_port(park.get());
    live_port_ = local_port(live.get());
    Shared* shared = shared_;
    ParkerOwner owner = owner_;
    int p = park.get(), l = live.get();
    std::string socket = daemon_.socket.string();
    server_ = ChildProcess::fork_function([=] { return probe_server_main(owner, p, l, socket, shared); }, {p, l});
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (shared_->server_ready == 0) {
      if (std::chrono::steady_clock::now() > deadline || !server_.running()) {
        throw std::runtime_error("the probe server did not open a session with parker");
      }
      std::this_thread::sleep_for(1ms);
    }
    // The library offers its highest owner minor (1.4); the raw 1.1 session says 1.1.
    const int expected = owner_ == ParkerOwner::raw_1_0 || owner_ == ParkerOwner::client_1_0 ? 0
                         : owner_ == ParkerOwner::client                                      ? parker::protocol::kOwnerMinor
                                                                                              : 1;
    if (shared_->minor != expected) {
      throw std::runtime_error(fmt::format("{}: the session negotiated protocol 1.{}, expected 1.{}", name(),
                                           shared_->minor.load(), expected));
    }
  }

  void stop() override {
    server_.stop(1s);
    daemon_.process.stop(2s);
    dir_.reset();
  }

  std::uint16_t park_port() const override { return park_port_; }
  std::uint16_t live_port() const override { return live_port_; }
  std::uint64_t parked_count() const override {
    if (shared_->server_failed != 0) throw std::runtime_error("parker refused a park (see its log)");
    return shared_->parked.load(std::memory_order_acquire);
  }
  pid_t watcher_pid() const override { return daemon_.pid(); }
  pid_t server_pid() const override { return server_.pid(); }

  std::filesystem::path daemon_socket() const override { return daemon_.socket; }
  ChildProcess replace_daemon(ChildProcess successor) override {
    std::swap(daemon_.process, successor);
    return successor;
  }
  std::uint64_t in_hand() const override { return shared_->in_hand.load(std::memory_order_acquire); }

 private:
  ParkerOwner owner_;
  Shared* shared_ = nullptr;
  std::unique_ptr<ScratchDir> dir_;
  RunningServer daemon_;
  ChildProcess server_;
  std::uint16_t park_port_ = 0;
  std::uint16_t live_port_ = 0;
};

}  // namespace
#endif

std::unique_ptr<ParkingBackend> make_parker_backend(const Config& config, std::string& why, ParkerOwner owner) {
  return make_parker_daemon_backend(config, why, owner);
}

std::unique_ptr<ParkerDaemonBackend> make_parker_daemon_backend(const Config& config, std::string& why,
                                                                ParkerOwner owner) {
  if (!std::filesystem::exists(config.program("parker"))) {
    why = "parker not built (no " + config.program("parker").string() + ")";
    return nullptr;
  }
#if defined(BENCH_HAVE_PARKER_CLIENT)
  return std::make_unique<ParkerBackend>(owner);
#else
  (void)owner;
  why = "parker's client library (parker::client, parker/client.hpp) not built";
  return nullptr;
#endif
}

}  // namespace parker::bench
