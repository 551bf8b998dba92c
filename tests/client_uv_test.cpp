// parker::UvClient — the libuv adapter — against a scripted fake parker: flushing once per
// loop iteration, reconnecting with back-off, closing cleanly (every handle closed, the
// memory freed in close callbacks, no fd left behind).
#include <catch2/catch.hpp>

#include <sys/ioctl.h>

#include "parker/client_uv.hpp"
#include "support/client_fake_parker.hpp"
#include "support/client_recorder.hpp"
#include "support/client_uv_loop.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

// A UvClient connected to a fake parker that granted `credit`.
struct UvSession {
  TempDir dir;
  FakeParker fake{dir.file("parker.sock")};
  TestLoop loop;
  ClientRecorder recorder;
  UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
  std::function<void()> pump = [this] { fake.pump(); };

  explicit UvSession(std::uint32_t credit, ClientOptions options = {}) {
    REQUIRE(client->connect(fake.path(), "uv-pool", options).ok());
    REQUIRE(loop.run_until([&] { return !fake.frames().empty(); }, 10s, pump));
    REQUIRE(fake.take<protocol::Hello>().size() == 1);
    fake.welcome(credit);
    REQUIRE(loop.run_until([&] { return client->connected(); }, 10s, pump));
  }
  ~UvSession() {
    client.reset();
    loop.run_until([] { return false; }, 20ms);  // the close callbacks run
  }
};

}  // namespace

TEST_CASE("UvClient: parks made in one loop iteration are flushed by the loop as few frames", "[client][uv][batching]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    UvSession s(600);
    // Park 600 from inside one loop callback, as a server would from its idle timer.
    uv_timer_t timer;
    uv_timer_init(s.loop.get(), &timer);
    struct Context {
      UvClient* client;
      int parked = 0;
    } context{s.client.get()};
    timer.data = &context;
    uv_timer_start(&timer, [](uv_timer_t* t) {
      auto* c = static_cast<Context*>(t->data);
      for (std::uint64_t id = 0; id < 600; ++id) {
        auto socket = make_parkable();
        if (c->client->park(socket.parked, id, "blob").ok()) ++c->parked;
      }
    }, 1, 0);
    std::vector<std::size_t> sizes;
    std::size_t received = 0;
    REQUIRE(s.loop.run_until([&] {
      for (auto& [park, fds] : s.fake.take<protocol::Park>()) {
        sizes.push_back(park.records.size());
        received += fds.size();
      }
      return received == 600;
    }, 10s, s.pump));
    CHECK(context.parked == 600);
    CHECK(sizes == std::vector<std::size_t>{253, 253, 94});
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    s.loop.run_until([] { return false; }, 5ms);  // its close completes while it is in scope
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: wakes, closes and rejections reach the callbacks", "[client][uv]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    UvSession s(10);
    auto a = make_parkable();
    auto b = make_parkable();
    s.fake.send(protocol::Wake{{{5, protocol::WakeReason::readable, "five"}}}, {a.parked.get()});
    s.fake.send(protocol::Rejected{{{6, protocol::RejectReason::duplicate_id, ""}}}, {b.parked.get()});
    s.fake.send(protocol::Closed{{{7, protocol::CloseReason::deadline}}});
    REQUIRE(s.loop.run_until([&] { return !s.recorder.closed.empty(); }, 10s, s.pump));
    REQUIRE(s.recorder.woken.size() == 1);
    CHECK(s.recorder.woken[0].blob == "five");
    CHECK(inode_of(s.recorder.woken[0].fd.get()) == inode_of(a.parked.get()));
    REQUIRE(s.recorder.rejected.size() == 1);
    CHECK(s.recorder.rejected[0].reason == protocol::RejectReason::duplicate_id);
    CHECK(s.recorder.closed[0].first == 7);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: parker closes with our frames unread right after its WAKE: every wake still arrives",
          "[client][uv][peer_gone]") {
  // A closing Unix socket with unread data leaves its peer in error: libuv reports POLLERR
  // (as UV_EBADF) instead of readable. The WAKE frame before the error is still to be read.
  std::size_t baseline = fd_baseline_with_libuv();
  {
    UvSession s(10);
    REQUIRE(s.client->recall(99).ok());
    REQUIRE(s.loop.run_until([&] {
      int unread = 0;
      return ::ioctl(s.fake.connection_fd(), FIONREAD, &unread) == 0 && unread > 0;
    }));
    WakeBatch batch(5);
    s.fake.send(batch.wake, batch.fds());
    batch.let_go();
    s.fake.close_connection();  // the RECALL unread
    REQUIRE(s.loop.run_until([&] { return !s.recorder.disconnected.empty(); }));
    REQUIRE(s.recorder.woken.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(still_connected(batch.sockets[i].peer.get(), s.recorder.woken[i].fd.get()));
    }
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: parker not running yet, then started: the client connects by itself", "[client][uv][reconnect]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    ClientOptions options;
    options.reconnect_min = 10ms;
    options.reconnect_max = 50ms;
    REQUIRE(client->connect(dir.file("parker.sock"), "late", options).ok());
    REQUIRE(loop.run_until([&] { return recorder.disconnected.size() >= 3; }));
    for (auto& d : recorder.disconnected) CHECK(d.first.is(ENOENT));
    FakeParker fake(dir.file("parker.sock"));
    auto pump = [&] { fake.pump(); };
    REQUIRE(loop.run_until([&] { return !fake.frames().empty(); }, 10s, pump));
    CHECK(fake.take<protocol::Hello>().at(0).first.pool == "late");
    fake.welcome(3);
    REQUIRE(loop.run_until([&] { return client->connected(); }, 10s, pump));
    CHECK(client->credit() == 3);
    client.reset();
    loop.run_until([] { return false; }, 20ms);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: parker restarts and the client reconnects with HELLO again", "[client][uv][reconnect]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    ClientOptions options;
    options.reconnect_min = 10ms;
    auto fake = std::make_unique<FakeParker>(dir.file("parker.sock"));
    std::function<void()> pump = [&] { if (fake) fake->pump(); };
    REQUIRE(client->connect(fake->path(), "restart", options).ok());
    REQUIRE(loop.run_until([&] { return !fake->frames().empty(); }, 10s, pump));
    fake->welcome(5);
    REQUIRE(loop.run_until([&] { return client->connected(); }, 10s, pump));
    // A park queued in this iteration when parker dies comes back with its fd.
    auto socket = make_parkable();
    ino_t inode = inode_of(socket.parked.get());
    REQUIRE(client->park(socket.parked, 1, "kept").ok());
    fake.reset();
    REQUIRE(loop.run_until([&] { return !recorder.disconnected.empty(); }, 10s, pump));
    CHECK(recorder.disconnected[0].first.failed());
    REQUIRE(recorder.rejected.size() == 1);
    CHECK(recorder.rejected[0].blob == "kept");
    CHECK(inode_of(recorder.rejected[0].fd.get()) == inode);

    fake = std::make_unique<FakeParker>(dir.file("parker.sock"));
    REQUIRE(loop.run_until([&] { return !fake->frames().empty(); }, 10s, pump));
    CHECK(fake->take<protocol::Hello>().size() == 1);
    fake->welcome(5, 65536, 2);
    REQUIRE(loop.run_until([&] { return client->connected(); }, 10s, pump));
    CHECK(recorder.connected.size() == 2);
    client.reset();
    loop.run_until([] { return false; }, 20ms);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: resetting the pointer gives back queued parks and frees everything", "[client][uv]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    UvSession s(5);
    auto socket = make_parkable();
    REQUIRE(s.client->park(socket.parked, 3, "three").ok());
    s.client.reset();  // before the loop had a chance to flush
    REQUIRE(s.recorder.rejected.size() == 1);
    CHECK(s.recorder.rejected[0].id == 3);
    CHECK(s.recorder.rejected[0].fd.valid());
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: close() from inside a callback, then the pointer reset later", "[client][uv]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    UvSession s(5);
    int wakes = 0;
    UvClient* raw = s.client.get();
    // Re-create with a callback that closes the client it belongs to.
    ClientCallbacks callbacks = s.recorder.callbacks();
    callbacks.on_wake = [&](WokenConnection) {
      ++wakes;
      raw->close();
      raw->close();  // idempotent
    };
    s.client.reset();
    s.loop.run_until([] { return false; }, 20ms);
    s.client = UvClient::create(s.loop.get(), std::move(callbacks));
    raw = s.client.get();
    REQUIRE(s.client->connect(s.fake.path(), "uv-pool").ok());
    REQUIRE(s.loop.run_until([&] { return s.fake.connections_accepted() == 2 && !s.fake.frames().empty(); }, 10s, s.pump));
    s.fake.frames().clear();
    s.fake.welcome(5);
    REQUIRE(s.loop.run_until([&] { return s.client->connected(); }, 10s, s.pump));
    auto a = make_parkable();
    s.fake.send(protocol::Wake{{{1, protocol::WakeReason::recalled, ""}}}, {a.parked.get()});
    REQUIRE(s.loop.run_until([&] { return wakes == 1; }, 10s, s.pump));
    CHECK_FALSE(s.client->connected());
    CHECK(s.client->connect(s.fake.path(), "uv-pool").is(EBADF));  // closed for good
    REQUIRE(s.loop.run_until([&] { return s.fake.peer_closed(); }, 10s, s.pump));
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("UvClient: a client never connected closes cleanly", "[client][uv]") {
  std::size_t baseline = fd_baseline_with_libuv();
  {
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    client.reset();
  }
  CHECK(open_fd_count() == baseline);
}
