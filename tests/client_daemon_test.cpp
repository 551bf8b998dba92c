// The client library against the real parker daemon: real TCP loopback connections parked
// through UvClient, woken by writing on the client side, recalled, dropped, rejected; parker
// restarted and killed under the client; fd counts of both processes back to baseline.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <sys/stat.h>

#include "parker/client_uv.hpp"
#include "parker/fd_passing.hpp"
#include "parker/frame_reader.hpp"
#include "parker/unix_socket.hpp"
#include "support/client_daemon.hpp"
#include "support/client_fake_parker.hpp"
#include "support/client_recorder.hpp"
#include "support/client_uv_loop.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

ClientOptions fast_reconnect() {
  ClientOptions options;
  options.reconnect_min = 10ms;
  options.reconnect_max = 100ms;
  return options;
}

// Parks `connection`'s server side under `id`, waiting for credit if parker has given none.
void park_when_credited(TestLoop& loop, UvClient& client, TcpConnection& connection, std::uint64_t id,
                        const std::string& blob, const ParkOptions& options = {}) {
  Error e;
  REQUIRE(loop.run_until([&] {
    e = client.park(connection.server_side, id, blob, options);
    return !e.is(ENOBUFS);
  }));
  INFO(describe(e));
  REQUIRE(e.ok());
  REQUIRE_FALSE(connection.server_side.valid());
}

// Between a Client and the real parker: each frame, with its fds, is passed on as it is, and
// the PARK frames the client sent are kept, so a test sees what the library put on the wire
// and what the real parker made of it.
struct RecordingRelay {
  FakeParker& client_side;  // what the Client connects to
  UniqueFd parker_side;     // a connection to the real parker
  protocol::FrameReader from_parker;
  std::vector<protocol::Park> parks;

  RecordingRelay(FakeParker& fake, const std::string& parker_socket) : client_side(fake) {
    auto c = connect_unix(parker_socket);
    REQUIRE(c.ok());
    parker_side = std::move(c.value);
  }

  // Passes on whatever has arrived on either side; once parker has closed its side, closes
  // the client's too, so the client sees its session end.
  void step() {
    if (!parker_side) return;
    client_side.pump();
    for (auto& frame : client_side.frames()) {
      if (auto* park = std::get_if<protocol::Park>(&frame.message)) parks.push_back(*park);
      std::vector<int> fds;
      for (auto& fd : frame.fds) fds.push_back(fd.get());
      REQUIRE(send_all_with_fds(parker_side.get(), protocol::encode(frame.message), fds).ok());
    }
    client_side.frames().clear();  // our copies of the fds close: the receiver has its own
    pollfd p{parker_side.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    Error e = from_parker.read_from(parker_side.get());
    while (auto frame = from_parker.next()) {
      std::vector<int> fds;
      for (auto& fd : frame->fds) fds.push_back(fd.get());
      client_side.send(frame->message, fds);
    }
    REQUIRE(from_parker.error() == protocol::DecodeError::none);
    if (e.failed() && !e.is(EAGAIN)) {
      parker_side.reset();
      client_side.close_connection();
    }
  }
};

std::string blob_for(std::uint64_t id) { return "session-" + std::to_string(id) + std::string(id % 50, '#'); }

}  // namespace

TEST_CASE("parked TCP connections are woken by their clients, recalled and dropped", "[client][daemon]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"));
    parker.start();
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    REQUIRE(client->connect(parker.socket_path(), "web", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return client->connected(); }));
    const std::size_t parker_baseline = parker.fd_count();

    constexpr std::uint64_t kConnections = 300;
    TcpLoopback tcp;
    std::map<std::uint64_t, TcpConnection> connections;
    for (std::uint64_t id = 0; id < kConnections; ++id) {
      connections[id] = tcp.connect();
      park_when_credited(loop, *client, connections[id], id, blob_for(id));
    }
    INFO(parker.output());
    REQUIRE(loop.run_until([&] { return parker.fd_count() == parker_baseline + kConnections; }));
    CHECK(recorder.rejected.empty());

    // Wake a random third by writing on the client side.
    std::vector<std::uint64_t> ids;
    for (std::uint64_t id = 0; id < kConnections; ++id) ids.push_back(id);
    std::mt19937 random(12345);
    std::shuffle(ids.begin(), ids.end(), random);
    std::set<std::uint64_t> to_wake(ids.begin(), ids.begin() + 100);
    for (auto id : to_wake) write_text(connections[id].client_side.get(), "PING " + std::to_string(id) + "\n");
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == to_wake.size(); }));
    std::set<std::uint64_t> woken_ids;
    for (WokenConnection& woken : recorder.woken) {
      CHECK(to_wake.count(woken.id) == 1);
      CHECK(woken_ids.insert(woken.id).second);
      CHECK(woken.blob == blob_for(woken.id));
      CHECK(woken.reason == protocol::WakeReason::readable);
      // Parker never read the client's bytes: they are all still there, on the same connection.
      CHECK(read_some(woken.fd.get()) == "PING " + std::to_string(woken.id) + "\n");
      write_text(woken.fd.get(), "PONG\n");
      CHECK(read_some(connections[woken.id].client_side.get()) == "PONG\n");
    }
    recorder.woken.clear();

    // Recall 50 of those still parked, drop 50 more.
    std::vector<std::uint64_t> still_parked(ids.begin() + 100, ids.end());
    std::set<std::uint64_t> recalled(still_parked.begin(), still_parked.begin() + 50);
    std::set<std::uint64_t> dropped(still_parked.begin() + 50, still_parked.begin() + 100);
    for (auto id : recalled) REQUIRE(client->recall(id).ok());
    for (auto id : dropped) REQUIRE(client->drop(id).ok());
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == 50 && recorder.closed.size() == 50; }));
    for (WokenConnection& woken : recorder.woken) {
      CHECK(recalled.count(woken.id) == 1);
      CHECK(woken.reason == protocol::WakeReason::recalled);
      CHECK(woken.blob == blob_for(woken.id));
    }
    for (auto& [id, reason] : recorder.closed) {
      CHECK(dropped.count(id) == 1);
      CHECK(reason == protocol::CloseReason::dropped);
      CHECK(read_some(connections[id].client_side.get()) == "");  // the client sees the close
    }
    CHECK(recorder.errors.empty());

    // A recall of an id that is not parked (any more) is a harmless, reported error.
    REQUIRE(client->recall(*recalled.begin()).ok());
    REQUIRE(loop.run_until([&] { return !recorder.errors.empty(); }));
    CHECK(recorder.errors[0].code == protocol::ErrorCode::unknown_id);
    CHECK(client->connected());

    // 100 remain parked in parker; nothing else is held.
    recorder.woken.clear();
    CHECK(parker.settle_fd_count(parker_baseline + 100) == parker_baseline + 100);

    // The owner goes; TERM makes parker close what it holds for an absent pool, and exit 0.
    client.reset();
    loop.run_until([] { return false; }, 20ms);
    CHECK(parker.stop() == 0);
    for (auto id : std::vector<std::uint64_t>(still_parked.begin() + 100, still_parked.end())) {
      CHECK(read_some(connections[id].client_side.get()) == "");
    }
    connections.clear();
    recorder = ClientRecorder{};
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("parker restarts under a connected client: shutdown wakes, reconnect, park again", "[client][daemon][reconnect]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"));
    parker.start();
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    REQUIRE(client->connect(parker.socket_path(), "restarting", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return client->connected(); }));
    const std::size_t parker_with_session = parker.fd_count();
    TcpLoopback tcp;
    std::vector<TcpConnection> connections(20);
    for (std::uint64_t id = 0; id < 20; ++id) {
      connections[id] = tcp.connect();
      park_when_credited(loop, *client, connections[id], id, blob_for(id));
    }
    REQUIRE(loop.run_until([&] { return parker.fd_count() == parker_with_session + 20; }));

    // TERM: parker hands every connection back to the live session, then exits. Our loop
    // must run to receive them, so signal first, take the wakes, then reap.
    ::kill(parker.pid(), SIGTERM);
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == 20 && !recorder.disconnected.empty(); }));
    CHECK(parker.wait_exit() == 0);
    for (WokenConnection& woken : recorder.woken) {
      CHECK(woken.reason == protocol::WakeReason::shutdown);
      CHECK(woken.blob == blob_for(woken.id));
      connections[woken.id].server_side = std::move(woken.fd);  // ours again
    }
    recorder.woken.clear();
    CHECK_FALSE(client->connected());

    // A new parker on the same path: the client finds it by itself and parks again.
    parker.start();
    REQUIRE(loop.run_until([&] { return recorder.connected.size() == 2; }));
    for (std::uint64_t id = 0; id < 20; ++id) park_when_credited(loop, *client, connections[id], id, blob_for(id));
    write_text(connections[7].client_side.get(), "again\n");
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == 1; }));
    CHECK(recorder.woken[0].id == 7);
    CHECK(read_some(recorder.woken[0].fd.get()) == "again\n");
    CHECK(recorder.rejected.empty());

    // SIGKILL: parker dies holding 19 connections, which the kernel closes; the client notices
    // and reconnects to the next parker.
    std::size_t disconnects = recorder.disconnected.size();
    parker.kill();
    REQUIRE(loop.run_until([&] { return recorder.disconnected.size() > disconnects; }));
    parker.start();
    REQUIRE(loop.run_until([&] { return recorder.connected.size() == 3; }));
    client.reset();
    loop.run_until([] { return false; }, 20ms);
    CHECK(parker.stop() == 0);
    recorder = ClientRecorder{};
    connections.clear();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("parker not running yet: the client connects once it starts", "[client][daemon][reconnect]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"));
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    REQUIRE(client->connect(parker.socket_path(), "early", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return recorder.disconnected.size() >= 2; }));
    CHECK(recorder.disconnected[0].first.is(ENOENT));
    parker.start();
    REQUIRE(loop.run_until([&] { return client->connected(); }));
    CHECK(recorder.connected.at(0).credit > 0);
    client.reset();
    loop.run_until([] { return false; }, 20ms);
    CHECK(parker.stop() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a new owner of the pool receives the wakes held while it was away", "[client][daemon]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"));
    parker.start();
    TestLoop loop;
    TcpLoopback tcp;
    std::vector<TcpConnection> connections(5);
    {
      ClientRecorder first;
      UvClientPtr owner = UvClient::create(loop.get(), first.callbacks());
      REQUIRE(owner->connect(parker.socket_path(), "handover", fast_reconnect()).ok());
      REQUIRE(loop.run_until([&] { return owner->connected(); }));
      for (std::uint64_t id = 0; id < 5; ++id) {
        connections[id] = tcp.connect();
        park_when_credited(loop, *owner, connections[id], id, blob_for(id));
      }
      REQUIRE(loop.run_until([&] { return !owner->core().has_queued(); }));
      loop.run_until([] { return false; }, 50ms);  // the PARK frame is on its way
      owner.reset();
      loop.run_until([] { return false; }, 20ms);
    }
    for (auto& c : connections) write_text(c.client_side.get(), "while away\n");
    ClientRecorder second;
    UvClientPtr owner = UvClient::create(loop.get(), second.callbacks());
    REQUIRE(owner->connect(parker.socket_path(), "handover", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return second.woken.size() == 5; }));
    for (WokenConnection& woken : second.woken) {
      CHECK(woken.reason == protocol::WakeReason::readable);
      CHECK(woken.blob == blob_for(woken.id));
      CHECK(read_some(woken.fd.get()) == "while away\n");
    }
    second.woken.clear();
    owner.reset();
    loop.run_until([] { return false; }, 20ms);
    CHECK(parker.stop() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("parks parker refuses come back with their fds", "[client][daemon]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"), {"--max-parked-per-owner", "3"});
    parker.start();
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    REQUIRE(client->connect(parker.socket_path(), "quota", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return client->connected(); }));
    TcpLoopback tcp;
    std::vector<TcpConnection> connections(5);
    std::vector<ino_t> inodes;
    for (std::uint64_t id = 0; id < 5; ++id) {
      connections[id] = tcp.connect();
      struct stat st {};
      REQUIRE(::fstat(connections[id].server_side.get(), &st) == 0);
      inodes.push_back(st.st_ino);
      park_when_credited(loop, *client, connections[id], id, "b");
    }
    // A duplicate id is refused too.
    auto duplicate = tcp.connect();
    park_when_credited(loop, *client, duplicate, 0, "dup");
    REQUIRE(loop.run_until([&] { return recorder.rejected.size() == 3; }));
    std::multiset<protocol::RejectReason> reasons;
    for (RejectedPark& back : recorder.rejected) {
      REQUIRE(back.reason.has_value());
      reasons.insert(*back.reason);
      REQUIRE(back.fd.valid());
      struct stat st {};
      REQUIRE(::fstat(back.fd.get(), &st) == 0);
      if (back.id != 0) CHECK(st.st_ino == inodes[back.id]);
    }
    CHECK(reasons.count(protocol::RejectReason::quota_owner) + reasons.count(protocol::RejectReason::duplicate_id) == 3);
    CHECK(client->connected());
    client.reset();
    loop.run_until([] { return false; }, 20ms);
    CHECK(parker.stop() == 0);
    recorder = ClientRecorder{};
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("hang-ups and deadlines: handed back or closed as the park asked", "[client][daemon]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"));
    parker.start();
    TestLoop loop;
    ClientRecorder recorder;
    UvClientPtr client = UvClient::create(loop.get(), recorder.callbacks());
    REQUIRE(client->connect(parker.socket_path(), "timing", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return client->connected(); }));
    TcpLoopback tcp;
    std::vector<TcpConnection> c(4);
    for (auto& connection : c) connection = tcp.connect();
    ParkOptions hangup_back;
    hangup_back.wake_on_hangup = true;
    ParkOptions deadline_back;
    deadline_back.deadline = 50ms;
    deadline_back.wake_on_deadline = true;
    ParkOptions deadline_close;
    deadline_close.deadline = 50ms;
    park_when_credited(loop, *client, c[0], 0, "hangup-wake", hangup_back);
    park_when_credited(loop, *client, c[1], 1, "hangup-close");
    park_when_credited(loop, *client, c[2], 2, "deadline-wake", deadline_back);
    park_when_credited(loop, *client, c[3], 3, "deadline-close", deadline_close);
    loop.run_until([] { return false; }, 30ms);
    c[0].client_side.reset();
    c[1].client_side.reset();
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == 2 && recorder.closed.size() == 2; }));
    std::map<std::uint64_t, protocol::WakeReason> woken;
    for (auto& w : recorder.woken) woken[w.id] = w.reason;
    CHECK(woken == std::map<std::uint64_t, protocol::WakeReason>{{0, protocol::WakeReason::hangup},
                                                                  {2, protocol::WakeReason::deadline}});
    std::map<std::uint64_t, protocol::CloseReason> closed(recorder.closed.begin(), recorder.closed.end());
    CHECK(closed == std::map<std::uint64_t, protocol::CloseReason>{{1, protocol::CloseReason::hangup},
                                                                    {3, protocol::CloseReason::deadline}});
    CHECK(read_some(c[3].client_side.get()) == "");
    client.reset();
    loop.run_until([] { return false; }, 20ms);
    CHECK(parker.stop() == 0);
    recorder = ClientRecorder{};
  }
  CHECK(open_fd_count() == baseline);
}

// 1.4: the library says it checked each parked fd is a socket (socket_checked), so parker skips
// its own check — but only on a 1.4 session: a parker before 1.4, and a 1.4 parker on a session
// the library opened at 1.3, refuses the flag (the frame's fds back, then a fatal bad_frame).
TEST_CASE("1.4: the library marks its parks socket_checked on a 1.4 session and not on a 1.3 one",
          "[client][daemon][socket_checked]") {
  const std::uint16_t offered = GENERATE(protocol::kOwnerMinor, protocol::kMinorWritesHandled);
  INFO("the client offers 1." << offered);
  const std::uint8_t checked = offered >= protocol::kMinorSocketChecked ? protocol::kSocketChecked : 0;
  const std::size_t baseline = open_fd_count();
  {
    TempDir dir;
    ParkerDaemon parker(dir.file("parker.sock"));
    parker.start();
    const std::size_t parker_baseline = parker.fd_count();
    FakeParker relay_end(dir.file("relay.sock"));
    RecordingRelay relay(relay_end, parker.socket_path());
    ClientRecorder recorder;
    Client client(recorder.callbacks());
    ClientOptions options = fast_reconnect();
    options.max_minor = offered;
    REQUIRE(client.connect(relay_end.path(), "web", options).ok());
    auto relayed_until = [&](const std::function<bool()>& done) {
      return run_until(client, nullptr, [&] {
        relay.step();
        return done();
      });
    };
    REQUIRE(relayed_until([&] { return client.connected(); }));
    REQUIRE(client.protocol_minor() == offered);  // the real parker speaks 1.4: the session is what we offered

    TcpLoopback tcp;
    std::vector<TcpConnection> connections(3);
    ParkOptions hangup;
    hangup.wake_on_hangup = true;
    for (std::uint64_t id = 0; id < 3; ++id) {
      connections[id] = tcp.connect();
      REQUIRE(client.park(connections[id].server_side, id, blob_for(id), id == 2 ? hangup : ParkOptions{}).ok());
    }
    // Parker confirms all three: on a 1.3 session the flag would have ended it instead.
    REQUIRE(relayed_until([&] { return recorder.parked.size() == 3 || !recorder.disconnected.empty(); }));
    CHECK(recorder.parked == std::vector<std::uint64_t>{0, 1, 2});
    CHECK(recorder.rejected.empty());
    CHECK(recorder.errors.empty());
    CHECK(recorder.disconnected.empty());
    REQUIRE_FALSE(relay.parks.empty());
    std::size_t records = 0;
    for (auto& park : relay.parks) {
      for (auto& record : park.records) {
        ++records;
        CHECK((record.flags & protocol::kSocketChecked) == checked);
        CHECK((record.flags & protocol::kWakeOnHangup) == (record.id == 2 ? protocol::kWakeOnHangup : 0));
      }
    }
    CHECK(records == 3);
    // Parker holds the three, and the relay's session.
    CHECK(parker.settle_fd_count(parker_baseline + 1 + 3) == parker_baseline + 1 + 3);

    write_text(connections[1].client_side.get(), "PING\n");
    REQUIRE(relayed_until([&] { return recorder.woken.size() == 1; }));
    CHECK(recorder.woken[0].id == 1);
    CHECK(recorder.woken[0].blob == blob_for(1));
    CHECK(recorder.woken[0].reason == protocol::WakeReason::readable);
    CHECK(read_some(recorder.woken[0].fd.get()) == "PING\n");
    recorder.woken.clear();
    // The wake is acknowledged: parker lets go of its copy.
    CHECK(relayed_until([&] { return parker.fd_count() == parker_baseline + 1 + 2; }));
    client.close();
    relay_end.stop_listening();
    relay.parker_side.reset();  // the owner is gone: a stopping parker closes the two left
    CHECK(parker.stop() == 0);
    recorder = ClientRecorder{};
  }
  CHECK(open_fd_count() == baseline);
}
