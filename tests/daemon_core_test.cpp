// A Pool on its CoreContext alone: a real readiness set and deadline timer on a libuv loop of
// the test's own, real sockets, and a registry that only records what the pool asked of it.
// No daemon, no listener, no session: what a pool does with an fd (keeps it, refuses it and
// leaves it to the caller, hands it back, closes it) is seen directly, fd by fd.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "core_context.hpp"
#include "parker/unix_socket.hpp"
#include "pool.hpp"
#include "support/fd_count.hpp"

using namespace parker;
using namespace parker::daemon;
using protocol::CloseReason;
using protocol::RejectReason;

namespace {

class RecordingRegistry final : public CoreRegistry {
 public:
  Pool* pool_for(const std::string&, uid_t) override { return nullptr; }
  void pool_may_be_idle(Pool&) override { ++idle_hints; }
  void held_added() override { ++holds; }
  void mark_dirty(ControlSession&) override {}
  void paused_for_room(ControlSession&) override {}
  void session_became_owner() override {}
  void session_closing(ControlSession&, bool) override {}
  void credit_changed() override { ++credit_changes; }
  std::uint32_t credit_window() const override { return 64; }
  std::string stats_text() const override { return {}; }
  std::string list_text() const override { return {}; }
  void hand_over(ControlSession&, std::uint32_t) override {}
  void handover_taken(ControlSession&, std::uint64_t) override {}

  int idle_hints = 0;
  int holds = 0;
  int credit_changes = 0;
};

// The pool under test with everything its context names, on a loop of its own.
struct Core {
  Core() {
    uv_loop_init(&loop);
    config.owner_grace = std::chrono::milliseconds(60000);
    totals.max_parked = 100;
    REQUIRE(watcher
                .open(
                    &loop,
                    [](void* t, int fd, bool error) {
                      auto& parked = *static_cast<ParkedTable*>(t);
                      ParkedSocket& s = parked[static_cast<std::uint32_t>(fd)];
                      parked.pool_of(s).socket_event(s, error);
                    },
                    &table)
                .ok());
    deadlines.open(&loop, [this](ParkedSocket& s) { table.pool_of(s).deadline_passed(s); });
  }
  ~Core() {
    pool.shutdown();  // nothing attached: what is parked or held is closed
    deadlines.close();
    watcher.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // Parks `fd` as a session would: the fd arrived (counted), then the pool decides.
  std::optional<RejectReason> park(std::uint64_t id, UniqueFd& fd, std::uint32_t deadline_ms = 0,
                                   std::uint8_t flags = 0) {
    capacity.fds_arrived(0, 1);
    auto reason = pool.park(protocol::ParkRecord{id, deadline_ms, flags, "blob-" + std::to_string(id)}, fd);
    if (reason) capacity.fds_released(1);  // refused: the session sends it back
    return reason;
  }

  template <class Done>
  bool run_until(Done done) {
    for (int i = 0; i < 5000; ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (done()) return true;
      uv_sleep(1);
    }
    return false;
  }

  uv_loop_t loop{};
  Config config;
  Capacity capacity{20000};
  Counters counters;
  ParkedTable table{20000};
  SocketWatcher watcher;
  DeadlineTimer deadlines{table};
  CoreTotals totals;
  RecordingRegistry registry;
  CoreContext context{&loop, config, capacity, counters, watcher, table, deadlines, totals, registry};
  Pool pool{context, "core-test", ::geteuid()};
};

std::pair<UniqueFd, UniqueFd> socket_pair() {
  auto pair = make_socket_pair(SOCK_STREAM, true);
  REQUIRE(pair.ok());
  return std::move(pair.value);
}

// The peer end sees the other end closed, within about a second: EOF, or a reset when the
// closed end had unread bytes.
bool sees_closed(int fd) {
  for (int i = 0; i < 1000; ++i) {
    char c;
    ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    uv_sleep(1);
  }
  return false;
}

// libuv opens a process-wide pipe the first time a loop is made, and keeps it: open it
// before a test counts its fds.
std::size_t fd_baseline() {
  static bool warmed = [] {
    uv_loop_t loop;
    uv_loop_init(&loop);
    return uv_loop_close(&loop) == 0;
  }();
  (void)warmed;
  return test::open_fd_count();
}

}  // namespace

TEST_CASE("core: a refused park leaves the fd with the caller, and nothing else changes", "[daemon][core]") {
  std::size_t before = fd_baseline();
  {
    Core core;
    auto [parked, peer] = socket_pair();
    REQUIRE_FALSE(core.park(7, parked).has_value());
    CHECK_FALSE(parked.valid());  // taken: the pool owns it now
    CHECK(core.pool.parked() == 1);
    CHECK(core.totals.parked == 1);
    CHECK(core.totals.blob_bytes == 6);

    auto [twin, twin_peer] = socket_pair();
    CHECK(core.park(7, twin) == RejectReason::duplicate_id);
    CHECK(twin.valid());  // refused: still ours, still open
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    CHECK(core.park(8, read_end) == RejectReason::not_socket);
    CHECK(read_end.valid());
    core.totals.max_parked = 1;
    CHECK(core.park(9, twin) == RejectReason::quota_total);
    CHECK(twin.valid());
    core.totals.stopping = true;
    CHECK(core.park(9, twin) == RejectReason::shutting_down);
    CHECK(twin.valid());
    CHECK(core.pool.parked() == 1);
    CHECK(core.totals.parked == 1);
    CHECK(core.capacity.client_fds() == 1);
  }
  CHECK(test::open_fd_count() == before);
}

TEST_CASE("core: a readable socket with no session attached is held, then closed after the grace", "[daemon][core]") {
  std::size_t before = fd_baseline();
  {
    Core core;
    auto [parked, peer] = socket_pair();
    REQUIRE_FALSE(core.park(1, parked).has_value());
    REQUIRE(::send(peer.get(), "x", 1, 0) == 1);
    REQUIRE(core.run_until([&] { return core.pool.held() == 1; }));
    CHECK(core.pool.parked() == 0);
    CHECK(core.totals.parked == 0);
    CHECK(core.totals.held == 1);
    CHECK(core.registry.holds == 1);  // the daemon is asked to run the grace timer
    CHECK(core.counters.wakes[static_cast<std::size_t>(protocol::WakeReason::readable)] == 1);
    CHECK(core.capacity.client_fds() == 1);  // held is still parker's

    CHECK(core.pool.expire_held(core.context.now() + 60000) == 0);
    CHECK(core.pool.held() == 0);
    CHECK(core.totals.held == 0);
    CHECK(core.capacity.client_fds() == 0);
    CHECK(core.counters.closed[static_cast<std::size_t>(CloseReason::owner_gone)] == 1);
    CHECK(sees_closed(peer.get()));  // parker's was the last copy
    CHECK(core.pool.idle());
  }
  CHECK(test::open_fd_count() == before);
}

TEST_CASE("core: a deadline closes the connection, or wakes it when asked to", "[daemon][core]") {
  std::size_t before = fd_baseline();
  {
    Core core;
    auto [closing, closing_peer] = socket_pair();
    auto [waking, waking_peer] = socket_pair();
    REQUIRE_FALSE(core.park(1, closing, 5).has_value());
    REQUIRE_FALSE(core.park(2, waking, 5, protocol::kWakeOnDeadline).has_value());
    core.deadlines.rearm_if_needed();
    REQUIRE(core.run_until([&] { return core.pool.parked() == 0; }));
    CHECK(core.counters.closed[static_cast<std::size_t>(CloseReason::deadline)] == 1);
    CHECK(core.counters.wakes[static_cast<std::size_t>(protocol::WakeReason::deadline)] == 1);
    CHECK(sees_closed(closing_peer.get()));
    CHECK(core.pool.held() == 1);  // the woken one waits for a session
    CHECK(core.capacity.client_fds() == 1);
  }
  CHECK(test::open_fd_count() == before);
}

TEST_CASE("core: letting go of an unconfirmed park closes only parker's copy", "[daemon][core]") {
  std::size_t before = fd_baseline();
  {
    Core core;
    auto [parked, peer] = socket_pair();
    UniqueFd owner_copy(::fcntl(parked.get(), F_DUPFD_CLOEXEC, 0));
    REQUIRE(owner_copy.valid());
    REQUIRE_FALSE(core.park(3, parked).has_value());
    CHECK(core.pool.let_go_unconfirmed(3));
    CHECK_FALSE(core.pool.let_go_unconfirmed(3));  // gone already
    CHECK(core.pool.parked() == 0);
    CHECK(core.counters.closed[static_cast<std::size_t>(CloseReason::dropped)] == 0);  // no CLOSED for it
    // The connection itself lives on in the owner's copy.
    REQUIRE(::send(peer.get(), "y", 1, 0) == 1);
    char c = 0;
    for (int i = 0; i < 1000 && ::recv(owner_copy.get(), &c, 1, MSG_DONTWAIT) != 1; ++i) uv_sleep(1);
    CHECK(c == 'y');
  }
  CHECK(test::open_fd_count() == before);
}
