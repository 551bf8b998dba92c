// parker::Client (the loop-agnostic core) against a scripted fake parker over a real Unix
// socket: the session, credit, batching, every way an fd comes back, reconnecting.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <set>

#include "parker/client.hpp"
#include "support/client_fake_parker.hpp"
#include "support/client_recorder.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

// A client connected to a fake parker that granted `credit`: the common start of most tests.
struct Session {
  TempDir dir;
  FakeParker fake{dir.file("parker.sock")};
  ClientRecorder recorder;
  Client client{recorder.callbacks()};

  explicit Session(std::uint32_t credit, std::uint32_t max_blob = 65536, ClientOptions options = {},
                   std::uint16_t minor = 0) {
    REQUIRE(client.connect(fake.path(), "pool-a", options).ok());
    REQUIRE(client.state() == Client::State::waiting);
    REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
    auto hello = fake.take<protocol::Hello>();
    REQUIRE(hello.size() == 1);
    CHECK(hello[0].first == protocol::Hello{protocol::kVersionMajor, protocol::kOwnerMinor, "pool-a"});
    fake.welcome(credit, max_blob, 1, minor);
    REQUIRE(run_until(client, &fake, [&] { return client.connected(); }));
  }
};

}  // namespace

TEST_CASE("connect says HELLO with the pool and WELCOME opens the session", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(7, 1000);
    REQUIRE(s.recorder.connected.size() == 1);
    CHECK(s.recorder.connected[0].credit == 7);
    CHECK(s.client.credit() == 7);
    CHECK(s.client.welcome().max_blob == 1000);
    CHECK(s.client.timer_deadline() == std::nullopt);  // no hello timeout once welcomed
    CHECK(s.recorder.disconnected.empty());
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("connect refuses bad arguments and a second start", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    ClientRecorder recorder;
    Client client(recorder.callbacks());
    CHECK(client.connect("/tmp/x.sock", "bad pool").is(EINVAL));
    CHECK(client.connect("/tmp/x.sock", std::string(65, 'a')).is(EINVAL));
    CHECK(client.connect("", "pool").is(EINVAL));
    CHECK(client.connect(std::string(200, 'p'), "pool").is(ENAMETOOLONG));
    ClientOptions backwards;
    backwards.reconnect_min = 100ms;
    backwards.reconnect_max = 10ms;
    CHECK(client.connect("/tmp/x.sock", "pool", backwards).is(EINVAL));
    CHECK(client.state() == Client::State::idle);
    CHECK(recorder.disconnected.empty());

    TempDir dir;
    REQUIRE(client.connect(dir.file("none.sock"), "pool").ok());
    CHECK(client.connect(dir.file("none.sock"), "pool").is(EISCONN));
    client.close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("parker not running: the failure is reported and retried with growing delays", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    TempDir dir;
    ClientRecorder recorder;
    Client client(recorder.callbacks());
    ClientOptions options;
    options.reconnect_min = 10ms;
    options.reconnect_max = 40ms;
    REQUIRE(client.connect(dir.file("parker.sock"), "pool").ok());
    // The first attempt happens inside connect().
    REQUIRE(recorder.disconnected.size() == 1);
    CHECK(recorder.disconnected[0].first.is(ENOENT));
    CHECK(client.state() == Client::State::backing_off);
    CHECK(client.fd() == -1);
    REQUIRE(client.timer_deadline().has_value());

    client.close();
    recorder.disconnected.clear();
    REQUIRE(client.connect(dir.file("parker.sock"), "pool", options).ok());
    REQUIRE(run_until(client, nullptr, [&] { return recorder.disconnected.size() >= 5; }));
    std::vector<long> delays;
    for (auto& [e, retry] : recorder.disconnected) {
      CHECK(e.is(ENOENT));
      delays.push_back(static_cast<long>(retry.count()));
    }
    CHECK(delays == std::vector<long>{10, 20, 40, 40, 40});
    client.close();
    CHECK(client.state() == Client::State::idle);
    CHECK_FALSE(client.timer_deadline().has_value());
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("with reconnect off a failed attempt leaves the client idle", "[client][core]") {
  TempDir dir;
  ClientRecorder recorder;
  Client client(recorder.callbacks());
  ClientOptions options;
  options.reconnect = false;
  REQUIRE(client.connect(dir.file("parker.sock"), "pool", options).ok());
  REQUIRE(recorder.disconnected.size() == 1);
  CHECK(recorder.disconnected[0].first.is(ENOENT));
  CHECK(client.state() == Client::State::idle);
  CHECK_FALSE(client.timer_deadline().has_value());
}

TEST_CASE("a socket file nobody listens on is ECONNREFUSED", "[client][core]") {
  TempDir dir;
  { auto listener = listen_unix(dir.file("stale.sock")); REQUIRE(listener.ok()); }  // closed: file stays
  ClientRecorder recorder;
  Client client(recorder.callbacks());
  REQUIRE(client.connect(dir.file("stale.sock"), "pool").ok());
  REQUIRE(recorder.disconnected.size() == 1);
  CHECK(recorder.disconnected[0].first.is(ECONNREFUSED));
  client.close();
}

TEST_CASE("park fails at once, leaving the fd to the caller, when it cannot be queued", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    ClientRecorder recorder;
    Client idle_client(recorder.callbacks());
    auto socket = make_parkable();
    int raw = socket.parked.get();
    CHECK(idle_client.park(socket.parked, 1, "blob").is(ENOTCONN));
    CHECK(socket.parked.get() == raw);
    CHECK(idle_client.recall(1).is(ENOTCONN));
    CHECK(idle_client.drop(1).is(ENOTCONN));

    Session s(10, 8);
    UniqueFd empty;
    CHECK(s.client.park(empty, 1, "").is(EBADF));
    CHECK(s.client.park(socket.parked, 1, "123456789").is(EMSGSIZE));  // over max_blob 8
    CHECK(socket.parked.get() == raw);
    ParkOptions negative;
    negative.deadline = -1ms;
    CHECK(s.client.park(socket.parked, 1, "", negative).is(EINVAL));
    ParkOptions too_far;
    too_far.deadline = std::chrono::milliseconds(std::int64_t{1} << 32);
    CHECK(s.client.park(socket.parked, 1, "", too_far).is(EINVAL));
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    UniqueFd pipe_read(pipe_fds[0]);
    UniqueFd pipe_write(pipe_fds[1]);
    CHECK(s.client.park(pipe_read, 1, "").is(ENOTSOCK));
    CHECK(pipe_read.valid());
    CHECK(s.client.credit() == 10);  // nothing consumed by a refusal
    CHECK(socket.parked.get() == raw);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("an observer session cannot park, recall or drop", "[client][core]") {
  TempDir dir;
  FakeParker fake(dir.file("parker.sock"));
  ClientRecorder recorder;
  Client client(recorder.callbacks());
  REQUIRE(client.connect(fake.path(), "").ok());
  REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
  CHECK(fake.take<protocol::Hello>().at(0).first.pool.empty());
  fake.welcome(0);
  REQUIRE(run_until(client, &fake, [&] { return client.connected(); }));
  auto socket = make_parkable();
  CHECK(client.park(socket.parked, 1, "").is(EINVAL));
  CHECK(client.recall(1).is(EINVAL));
  CHECK(client.drop(1).is(EINVAL));
}

TEST_CASE("parks go out with their fds, ids, blobs, deadlines and flags", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(10);
    std::vector<ParkableSocket> sockets;
    std::vector<ino_t> inodes;
    for (int i = 0; i < 3; ++i) {
      sockets.push_back(make_parkable());
      inodes.push_back(inode_of(sockets.back().parked.get()));
    }
    ParkOptions options;
    options.deadline = 1500ms;
    options.wake_on_deadline = true;
    REQUIRE(s.client.park(sockets[0].parked, 100, std::string("a\0b", 3), options).ok());
    CHECK_FALSE(sockets[0].parked.valid());  // taken
    options.wake_on_deadline = false;
    options.wake_on_hangup = true;
    REQUIRE(s.client.park(sockets[1].parked, 101, "", options).ok());
    REQUIRE(s.client.park(sockets[2].parked, 102, std::string(65536, 'x')).ok());
    CHECK(s.client.credit() == 7);
    CHECK(s.client.has_queued());
    s.client.flush();
    CHECK_FALSE(s.client.has_queued());
    REQUIRE(pump_until(s.fake, [&] { return !s.fake.frames().empty(); }));
    auto parks = s.fake.take<protocol::Park>();
    REQUIRE(parks.size() == 1);
    auto& [park, fds] = parks[0];
    REQUIRE(park.records.size() == 3);
    REQUIRE(fds.size() == 3);
    CHECK(park.records[0] == protocol::ParkRecord{100, 1500, protocol::kWakeOnDeadline, std::string("a\0b", 3)});
    CHECK(park.records[1] == protocol::ParkRecord{101, 1500, protocol::kWakeOnHangup, ""});
    CHECK(park.records[2] == protocol::ParkRecord{102, 0, 0, std::string(65536, 'x')});
    for (std::size_t i = 0; i < 3; ++i) CHECK(inode_of(fds[i].get()) == inodes[i]);
  }
  CHECK(open_fd_count() == baseline);
}

// 1.4: park() has checked each fd is a socket (ENOTSOCK), so on a session that speaks 1.4 the
// library says so in every record (socket_checked) and parker skips its own check. To a parker
// before 1.4 the flag is malformed (it would end the session): it must not be sent there.
TEST_CASE("1.4: parks carry socket_checked only on a session that speaks 1.4", "[client][core][socket_checked]") {
  const std::uint16_t minor = GENERATE(std::uint16_t{0}, protocol::kMinorWritesHandled, protocol::kMinorSocketChecked);
  INFO("WELCOME says 1." << minor);
  const std::uint8_t checked = minor >= protocol::kMinorSocketChecked ? protocol::kSocketChecked : 0;
  std::size_t baseline = open_fd_count();
  {
    Session s(10, 65536, {}, minor);
    REQUIRE(s.client.protocol_minor() == minor);
    // The claim is true: what is not a socket is refused here, before any record is made.
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    UniqueFd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);
    CHECK(s.client.park(pipe_read, 9, "").is(ENOTSOCK));
    CHECK(pipe_read.valid());

    auto a = make_parkable();
    auto b = make_parkable();
    ParkOptions hangup;
    hangup.wake_on_hangup = true;
    REQUIRE(s.client.park(a.parked, 1, "one").ok());
    REQUIRE(s.client.park(b.parked, 2, "two", hangup).ok());
    s.client.flush();
    REQUIRE(pump_until(s.fake, [&] { return !s.fake.frames().empty(); }));
    auto parks = s.fake.take<protocol::Park>();
    REQUIRE(parks.size() == 1);
    auto& records = parks[0].first.records;
    REQUIRE(records.size() == 2);
    CHECK(records[0] == protocol::ParkRecord{1, 0, checked, "one"});
    CHECK(records[1] == protocol::ParkRecord{2, 0, static_cast<std::uint8_t>(protocol::kWakeOnHangup | checked), "two"});
    if (minor >= protocol::kMinorExactlyOnce) {
      s.fake.send(protocol::Parked{2});
      REQUIRE(run_until(s.client, &s.fake, [&] { return s.recorder.parked.size() == 2; }));
    }
    CHECK(s.recorder.rejected.empty());
    s.client.close();
  }
  CHECK(open_fd_count() == baseline);
}

// ParkOptions::socket_known: the caller vouches (its fds come from accept()), park() skips
// its fstat and the record still says socket_checked to a 1.4 parker. A false vouch is the
// caller's problem, and parker's safeguards take over: here the pipe goes out as claimed.
TEST_CASE("1.4: a park with socket_known skips the library's check and still says socket_checked",
          "[client][core][socket_checked]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(10, 65536, {}, protocol::kMinorSocketChecked);
    auto a = make_parkable();
    const ino_t a_inode = inode_of(a.parked.get());
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    UniqueFd pipe_read(pipe_fds[0]), pipe_write(pipe_fds[1]);
    ParkOptions known;
    known.socket_known = true;
    REQUIRE(s.client.park(a.parked, 1, "one", known).ok());
    REQUIRE(s.client.park(pipe_read, 2, "two", known).ok());  // not checked: taken
    CHECK_FALSE(pipe_read.valid());
    s.client.flush();
    REQUIRE(pump_until(s.fake, [&] { return !s.fake.frames().empty(); }));
    auto parks = s.fake.take<protocol::Park>();
    REQUIRE(parks.size() == 1);
    REQUIRE(parks[0].first.records.size() == 2);
    CHECK(parks[0].first.records[0] == protocol::ParkRecord{1, 0, protocol::kSocketChecked, "one"});
    CHECK(parks[0].first.records[1] == protocol::ParkRecord{2, 0, protocol::kSocketChecked, "two"});
    REQUIRE(parks[0].second.size() == 2);
    CHECK(inode_of(parks[0].second[0].get()) == a_inode);
    s.fake.send(protocol::Parked{2});
    REQUIRE(run_until(s.client, &s.fake, [&] { return s.recorder.parked.size() == 2; }));
    s.client.close();
  }
  CHECK(open_fd_count() == baseline);
}

// A program that parks in a tight loop and reads parker's socket only when its credit runs
// out would close its copies of confirmed parks thousands of parks after sending them, cold
// in the CPU's caches (1.1 parked at 0.84-0.89x of 1.0 in bench/README.md's ack_cost). So
// flush() reads parker's answers itself every 256 parks sent: here nobody else reads.
TEST_CASE("1.1: flush() reads the confirmations itself every 256 parks sent", "[client][core][exactly_once]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(2048, 65536, {}, protocol::kMinorExactlyOnce);
    std::vector<ParkableSocket> sockets;
    ParkOptions known;
    known.socket_known = true;
    auto park_and_flush = [&](std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) {
        sockets.push_back(make_parkable());
        REQUIRE(s.client.park(sockets.back().parked, sockets.size(), "", known).ok());
        s.client.flush();
      }
    };
    std::size_t received = 0;
    // Drives the client too (a full socket needs on_writable): only while no PARKED is unread.
    auto receive_parks = [&](std::size_t total) {
      REQUIRE(run_until(s.client, &s.fake, [&] {
        for (auto& [park, fds] : s.fake.take<protocol::Park>()) received += park.records.size();
        return received == total;
      }));
    };
    park_and_flush(200);
    receive_parks(200);
    s.fake.send(protocol::Parked{200});
    park_and_flush(55);  // 255 sent: not yet
    CHECK(s.recorder.parked.empty());
    park_and_flush(1);   // the 256th: flush() reads PARKED
    CHECK(s.recorder.parked.size() == 200);
    receive_parks(256);
    s.fake.send(protocol::Parked{256});
    park_and_flush(255);
    CHECK(s.recorder.parked.size() == 200);
    park_and_flush(1);
    CHECK(s.recorder.parked.size() == 256);
    s.client.close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("credit: parks beyond it fail with ENOBUFS until CREDIT grants more", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(3);
    std::vector<ParkableSocket> sockets(6);
    for (auto& socket : sockets) socket = make_parkable();
    for (int i = 0; i < 3; ++i) REQUIRE(s.client.park(sockets[static_cast<std::size_t>(i)].parked, static_cast<std::uint64_t>(i), "").ok());
    CHECK(s.client.credit() == 0);
    int raw = sockets[3].parked.get();
    CHECK(s.client.park(sockets[3].parked, 3, "").is(ENOBUFS));
    CHECK(sockets[3].parked.get() == raw);
    s.fake.send(protocol::Credit{2});
    REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.credits.empty(); }));
    CHECK(s.recorder.credits == std::vector<std::uint32_t>{2});
    CHECK(s.client.park(sockets[3].parked, 3, "").ok());
    CHECK(s.client.park(sockets[4].parked, 4, "").ok());
    CHECK(s.client.park(sockets[5].parked, 5, "").is(ENOBUFS));
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("600 parks made in one iteration go out as 3 frames of at most 253", "[client][core][batching]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(600);
    std::vector<UniqueFd> peers;
    std::set<ino_t> inodes;
    for (std::uint64_t id = 0; id < 600; ++id) {
      auto socket = make_parkable();
      inodes.insert(inode_of(socket.parked.get()));
      REQUIRE(s.client.park(socket.parked, id, "session " + std::to_string(id)).ok());
      peers.push_back(std::move(socket.peer));
    }
    CHECK(s.client.credit() == 0);
    s.client.flush();
    std::size_t received = 0;
    std::vector<std::size_t> sizes;
    std::uint64_t next_id = 0;
    REQUIRE(run_until(s.client, &s.fake, [&] {
      for (auto& [park, fds] : s.fake.take<protocol::Park>()) {
        sizes.push_back(park.records.size());
        REQUIRE(fds.size() == park.records.size());
        for (std::size_t i = 0; i < fds.size(); ++i) {
          CHECK(park.records[i].id == next_id);  // in the order they were parked
          CHECK(park.records[i].blob == "session " + std::to_string(next_id));
          CHECK(inodes.count(inode_of(fds[i].get())) == 1);
          ++next_id;
        }
        received += fds.size();
      }
      return received == 600;
    }));
    CHECK(sizes == std::vector<std::size_t>{253, 253, 94});
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("parks with big blobs are split so each frame stays under 16 MiB", "[client][core][batching]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(10, 0);  // max_blob 0: parker sets no limit of its own
    const std::string blob(5u << 20, 'b');
    for (std::uint64_t id = 0; id < 4; ++id) {
      auto socket = make_parkable();
      REQUIRE(s.client.park(socket.parked, id, blob).ok());
    }
    auto socket = make_parkable();
    CHECK(s.client.park(socket.parked, 9, std::string(protocol::kMaxFrameBody, 'x')).is(EMSGSIZE));
    std::vector<std::size_t> sizes;
    REQUIRE(run_until(s.client, &s.fake, [&] {
      for (auto& [park, fds] : s.fake.take<protocol::Park>()) sizes.push_back(park.records.size());
      return sizes.size() == 2;
    }));
    CHECK(sizes == std::vector<std::size_t>{3, 1});
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a park parker rejects comes back with its fd, its blob and the reason", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(5);
    auto socket = make_parkable();
    ino_t inode = inode_of(socket.parked.get());
    REQUIRE(s.client.park(socket.parked, 77, "state").ok());
    s.client.flush();
    REQUIRE(pump_until(s.fake, [&] { return !s.fake.frames().empty(); }));
    auto parks = s.fake.take<protocol::Park>();
    REQUIRE(parks.size() == 1);
    s.fake.send(protocol::Rejected{{{77, protocol::RejectReason::quota_owner, "state"}}}, {parks[0].second[0].get()});
    parks.clear();  // the fake's copy
    REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.rejected.empty(); }));
    RejectedPark& back = s.recorder.rejected[0];
    CHECK(back.id == 77);
    REQUIRE(back.reason.has_value());
    CHECK(*back.reason == protocol::RejectReason::quota_owner);
    CHECK(back.blob == "state");
    CHECK(inode_of(back.fd.get()) == inode);
    CHECK(back.describe() == "parker refused it: quota_owner");
    CHECK(s.client.connected());
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("woken connections come back with fd, id, blob and reason", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(5);
    std::vector<ParkableSocket> sockets(3);
    for (auto& socket : sockets) socket = make_parkable();
    protocol::Wake wake{{{1, protocol::WakeReason::readable, "one"},
                         {2, protocol::WakeReason::recalled, ""},
                         {3, protocol::WakeReason::shutdown, std::string(1000, '3')}}};
    s.fake.send(wake, {sockets[0].parked.get(), sockets[1].parked.get(), sockets[2].parked.get()});
    REQUIRE(run_until(s.client, &s.fake, [&] { return s.recorder.woken.size() == 3; }));
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(s.recorder.woken[i].id == wake.records[i].id);
      CHECK(s.recorder.woken[i].blob == wake.records[i].blob);
      CHECK(s.recorder.woken[i].reason == wake.records[i].reason);
      CHECK(inode_of(s.recorder.woken[i].fd.get()) == inode_of(sockets[i].parked.get()));
    }
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("CLOSED and non-fatal ERROR are reported and the session goes on", "[client][core]") {
  Session s(5);
  s.fake.send(protocol::Closed{{{5, protocol::CloseReason::hangup}, {6, protocol::CloseReason::dropped}}});
  s.fake.send(protocol::ErrorMessage{protocol::ErrorCode::unknown_id, false, 99, "id 99 is not parked"});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.errors.empty(); }));
  REQUIRE(s.recorder.closed.size() == 2);
  CHECK(s.recorder.closed[0] == std::pair{std::uint64_t{5}, protocol::CloseReason::hangup});
  CHECK(s.recorder.closed[1] == std::pair{std::uint64_t{6}, protocol::CloseReason::dropped});
  CHECK(s.recorder.errors[0].id == 99);
  CHECK(s.client.connected());
  CHECK(s.recorder.disconnected.empty());
}

TEST_CASE("a fatal ERROR ends the session and the client retries", "[client][core]") {
  Session s(5);
  s.fake.send(protocol::ErrorMessage{protocol::ErrorCode::pool_taken, true, 0, "pool belongs to uid 7"});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  CHECK(s.recorder.errors.at(0).code == protocol::ErrorCode::pool_taken);
  CHECK(s.recorder.disconnected[0].first.is(ECONNABORTED));
  CHECK(s.client.state() == Client::State::backing_off);
}

TEST_CASE("recall and drop are batched into RECALL and DROP frames after the parks", "[client][core]") {
  Session s(5);
  auto socket = make_parkable();
  REQUIRE(s.client.park(socket.parked, 1, "").ok());
  REQUIRE(s.client.recall(1).ok());
  REQUIRE(s.client.recall(2).ok());
  REQUIRE(s.client.drop(3).ok());
  s.client.flush();
  REQUIRE(pump_until(s.fake, [&] { return s.fake.frames().size() == 3; }));
  auto& frames = s.fake.frames();
  CHECK(protocol::type_of(frames[0].message) == protocol::MessageType::park);
  CHECK(frames[1].message == protocol::Message{protocol::Recall{{1, 2}}});
  CHECK(frames[2].message == protocol::Message{protocol::Drop{{3}}});
}

TEST_CASE("losing parker returns every queued park's fd, and none is lost", "[client][core][no_loss]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(100, 0);
    std::map<std::uint64_t, ino_t> inodes;
    std::vector<UniqueFd> peers;
    // One frame per park, with 60 KB blobs, until the socket to parker is full; then a few
    // more that are only queued (not yet framed).
    std::uint64_t id = 0;
    const std::string blob(60000, 's');
    while (!s.client.wants_write() && id < 90) {
      auto socket = make_parkable();
      inodes[id] = inode_of(socket.parked.get());
      peers.push_back(std::move(socket.peer));
      REQUIRE(s.client.park(socket.parked, id++, blob).ok());
      s.client.flush();
    }
    REQUIRE(s.client.wants_write());
    for (int i = 0; i < 5; ++i) {
      auto socket = make_parkable();
      inodes[id] = inode_of(socket.parked.get());
      peers.push_back(std::move(socket.peer));
      REQUIRE(s.client.park(socket.parked, id++, blob).ok());
    }
    // Parker dies after reading what had reached it (and closing those fds).
    std::size_t received = s.fake.drain_and_close();
    s.fake.stop_listening();
    REQUIRE(run_until(s.client, nullptr, [&] { return !s.recorder.disconnected.empty(); }));
    std::set<std::uint64_t> returned_ids;
    for (RejectedPark& back : s.recorder.rejected) {
      CHECK_FALSE(back.reason.has_value());
      CHECK(back.blob == blob);
      REQUIRE(inodes.count(back.id) == 1);
      CHECK(inode_of(back.fd.get()) == inodes[back.id]);
      CHECK(returned_ids.insert(back.id).second);
    }
    INFO("returned " << returned_ids.size() << ", received by parker " << received << ", parked " << id);
    CHECK(returned_ids.size() >= 5);
    CHECK(returned_ids.size() + received == id);  // every fd is accounted for exactly once
    CHECK(s.client.state() == Client::State::backing_off);
    CHECK(s.client.credit() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("close() gives back queued parks and is idempotent, with no callback after it", "[client][core][no_loss]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(5);
    auto a = make_parkable();
    auto b = make_parkable();
    ino_t inode_a = inode_of(a.parked.get());
    REQUIRE(s.client.park(a.parked, 1, "one").ok());
    REQUIRE(s.client.park(b.parked, 2, "two").ok());
    s.client.close();
    REQUIRE(s.recorder.rejected.size() == 2);
    CHECK(s.recorder.rejected[0].id == 1);
    CHECK(s.recorder.rejected[0].blob == "one");
    CHECK(inode_of(s.recorder.rejected[0].fd.get()) == inode_a);
    CHECK(s.recorder.rejected[1].id == 2);
    s.client.close();
    CHECK(s.recorder.rejected.size() == 2);
    CHECK(s.recorder.disconnected.empty());
    CHECK(s.client.state() == Client::State::idle);
    CHECK(s.client.fd() == -1);
    // Parker hears the connection go.
    REQUIRE(pump_until(s.fake, [&] { return s.fake.peer_closed(); }));
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("after parker restarts the client reconnects and says HELLO again", "[client][core][reconnect]") {
  std::size_t baseline = open_fd_count();
  {
    TempDir dir;
    ClientRecorder recorder;
    Client client(recorder.callbacks());
    ClientOptions options;
    options.reconnect_min = 5ms;
    options.reconnect_max = 40ms;
    auto fake = std::make_unique<FakeParker>(dir.file("parker.sock"));
    REQUIRE(client.connect(fake->path(), "pool-r", options).ok());
    REQUIRE(pump_until(*fake, [&] { return !fake->frames().empty(); }));
    fake->welcome(10, 65536, 1);
    REQUIRE(run_until(client, fake.get(), [&] { return client.connected(); }));
    fake.reset();  // parker goes away (socket file removed)
    REQUIRE(run_until(client, nullptr, [&] { return recorder.disconnected.size() >= 3; }));
    CHECK(recorder.disconnected[0].first.is(ECONNRESET));
    CHECK(recorder.disconnected[0].second == 5ms);
    CHECK(recorder.disconnected[1].first.is(ENOENT));
    auto socket = make_parkable();
    CHECK(client.park(socket.parked, 1, "").is(ENOTCONN));

    fake = std::make_unique<FakeParker>(dir.file("parker.sock"));
    REQUIRE(run_until(client, fake.get(), [&] { return !fake->frames().empty(); }));
    auto hello = fake->take<protocol::Hello>();
    REQUIRE(hello.size() == 1);
    CHECK(hello[0].first.pool == "pool-r");
    fake->welcome(4, 65536, 2);
    REQUIRE(run_until(client, fake.get(), [&] { return client.connected(); }));
    REQUIRE(recorder.connected.size() == 2);
    CHECK(recorder.connected[1].session_id == 2);
    CHECK(client.credit() == 4);
    CHECK(client.reconnect_delay() == 5ms);  // back-off reset by the WELCOME
    CHECK(client.park(socket.parked, 1, "").ok());
    client.close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("no WELCOME within the hello timeout: drop and retry", "[client][core][reconnect]") {
  TempDir dir;
  FakeParker fake(dir.file("parker.sock"));
  ClientRecorder recorder;
  Client client(recorder.callbacks());
  ClientOptions options;
  options.hello_timeout = 50ms;
  REQUIRE(client.connect(fake.path(), "pool", options).ok());
  REQUIRE(run_until(client, &fake, [&] { return !recorder.disconnected.empty(); }));
  CHECK(recorder.disconnected[0].first.is(ETIMEDOUT));
  CHECK(recorder.connected.empty());
  client.close();
}

TEST_CASE("garbage from parker ends the session with EPROTO and closes what came with it", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    Session s(5);
    auto extra = make_parkable();
    auto credit = protocol::encode(protocol::Credit{1});
    s.fake.send_raw(credit, {extra.parked.get()});  // an fd on a frame that carries none
    extra.parked.reset();
    REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
    CHECK(s.recorder.disconnected[0].first.is(EPROTO));
    // The fd that came with the garbage was closed: its peer sees EOF.
    char c;
    CHECK(::read(extra.peer.get(), &c, 1) == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a message only owners send, coming from parker, is a protocol error", "[client][core]") {
  Session s(5);
  s.fake.send(protocol::Recall{{1}});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  CHECK(s.recorder.disconnected[0].first.is(EPROTO));
}

TEST_CASE("callbacks may close the client, and fds already received are still delivered", "[client][core]") {
  std::size_t baseline = open_fd_count();
  {
    TempDir dir;
    FakeParker fake(dir.file("parker.sock"));
    std::vector<WokenConnection> woken;
    int disconnects = 0;
    ClientCallbacks callbacks;
    Client* self = nullptr;
    callbacks.on_wake = [&](WokenConnection w) {
      woken.push_back(std::move(w));
      self->close();
    };
    callbacks.on_disconnected = [&](Error, std::chrono::milliseconds) { ++disconnects; };
    Client client(std::move(callbacks));
    self = &client;
    REQUIRE(client.connect(fake.path(), "pool").ok());
    REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
    fake.welcome(5);
    REQUIRE(run_until(client, &fake, [&] { return client.connected(); }));
    auto a = make_parkable();
    auto b = make_parkable();
    fake.send(protocol::Wake{{{1, protocol::WakeReason::readable, ""}, {2, protocol::WakeReason::readable, ""}}},
              {a.parked.get(), b.parked.get()});
    fake.send(protocol::Credit{5});
    REQUIRE(run_until(client, &fake, [&] { return client.state() == Client::State::idle; }));
    CHECK(woken.size() == 2);
    CHECK(disconnects == 0);
    CHECK(client.credit() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("while parks come back from a lost connection the client already says ENOTCONN", "[client][core][no_loss]") {
  std::size_t baseline = open_fd_count();
  {
    TempDir dir;
    FakeParker fake(dir.file("parker.sock"));
    std::vector<Error> repark_errors;
    std::vector<RejectedPark> returned;
    Client* self = nullptr;
    ClientCallbacks callbacks;
    callbacks.on_rejected = [&](RejectedPark park) {
      repark_errors.push_back(self->park(park.fd, park.id, park.blob));
      returned.push_back(std::move(park));  // the fd stayed in `park`: still ours
    };
    Client client(std::move(callbacks));
    self = &client;
    REQUIRE(client.connect(fake.path(), "pool").ok());
    REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
    fake.welcome(5);
    REQUIRE(run_until(client, &fake, [&] { return client.connected(); }));
    auto socket = make_parkable();
    REQUIRE(client.park(socket.parked, 1, "x").ok());
    fake.stop_listening();
    REQUIRE(run_until(client, nullptr, [&] { return !returned.empty(); }));
    CHECK(repark_errors == std::vector<Error>{Error{ENOTCONN}});
    CHECK(returned[0].fd.valid());
    client.close();
  }
  CHECK(open_fd_count() == baseline);
}

// ---- write-through: what the client says of writes a session ended without answering ----

namespace {

// Three WRITEs sent whole, the first answered; then parker ends the session with a fatal ERROR
// whose id is `error_id`. The session speaks `minor`.
std::vector<UnansweredWrites> three_writes_then_fatal_error(std::uint16_t minor, std::uint64_t error_id) {
  Session s(5, 65536, {}, minor);
  for (int i = 0; i < 3; ++i) REQUIRE(s.client.write({7}, "+m\r\n").ok());
  s.client.flush();
  REQUIRE(pump_until(s.fake, [&] { return s.fake.frames().size() >= 3; }));
  REQUIRE(s.fake.take<protocol::Write>().size() == 3);
  s.fake.send(protocol::WriteResult{1, 1, {}});
  s.fake.send(protocol::ErrorMessage{protocol::ErrorCode::shutting_down, true, error_id, "parker is shutting down"});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  CHECK(s.recorder.write_results.size() == 1);
  return s.recorder.unanswered;
}

}  // namespace

TEST_CASE("1.3: writes after the count in parker's fatal ERROR are reported not sent", "[client][core][write]") {
  const auto unanswered = three_writes_then_fatal_error(protocol::kMinorWritesHandled, 1);
  REQUIRE(unanswered.size() == 1);
  CHECK(unanswered[0].first == 2);
  CHECK(unanswered[0].unknown_upto == 1);  // none unknown
  CHECK(unanswered[0].last == 3);
}

TEST_CASE("1.3: a fatal ERROR counting a write not answered leaves that one unknown", "[client][core][write]") {
  const auto unanswered = three_writes_then_fatal_error(protocol::kMinorWritesHandled, 2);
  REQUIRE(unanswered.size() == 1);
  CHECK(unanswered[0].first == 2);
  CHECK(unanswered[0].unknown_upto == 2);
  CHECK(unanswered[0].last == 3);
}

TEST_CASE("1.1: writes sent whole when parker ends the session are unknown", "[client][core][write]") {
  const auto unanswered = three_writes_then_fatal_error(1, 0);  // a 1.1 ERROR's id says nothing
  REQUIRE(unanswered.size() == 1);
  CHECK(unanswered[0].first == 2);
  CHECK(unanswered[0].unknown_upto == 3);
  CHECK(unanswered[0].last == 3);
}

TEST_CASE("writes sent whole are unknown when parker goes away without a word", "[client][core][write]") {
  Session s(5, 65536, {}, protocol::kMinorWritesHandled);
  REQUIRE(s.client.write({7}, "+a\r\n").ok());
  REQUIRE(s.client.write({8}, "+b\r\n").ok());
  s.client.flush();
  REQUIRE(pump_until(s.fake, [&] { return s.fake.frames().size() >= 2; }));
  s.fake.close_connection();  // as a SIGKILLed parker
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  REQUIRE(s.recorder.unanswered.size() == 1);
  CHECK(s.recorder.unanswered[0].first == 1);
  CHECK(s.recorder.unanswered[0].unknown_upto == 2);
  CHECK(s.recorder.unanswered[0].last == 2);
}

TEST_CASE("writes never framed when the session ends are reported not sent", "[client][core][write]") {
  Session s(5, 65536, {}, 1);
  REQUIRE(s.client.write({7}, "+a\r\n").ok());  // queued; flush() never ran
  s.fake.close_connection();
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  REQUIRE(s.recorder.unanswered.size() == 1);
  CHECK(s.recorder.unanswered[0].first == 1);
  CHECK(s.recorder.unanswered[0].unknown_upto == 0);
  CHECK(s.recorder.unanswered[0].last == 1);
}

TEST_CASE("a session whose writes were all answered reports none unanswered", "[client][core][write]") {
  Session s(5, 65536, {}, protocol::kMinorWritesHandled);
  REQUIRE(s.client.write({7}, "+a\r\n").ok());
  s.client.flush();
  REQUIRE(pump_until(s.fake, [&] { return !s.fake.frames().empty(); }));
  s.fake.send(protocol::WriteResult{1, 1, {}});
  s.fake.send(protocol::ErrorMessage{protocol::ErrorCode::shutting_down, true, 1, "parker is shutting down"});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  CHECK(s.recorder.write_results.size() == 1);
  CHECK(s.recorder.unanswered.empty());
}
