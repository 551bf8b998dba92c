// parker::Client on a protocol 1.1 session, against a scripted fake parker over a real Unix
// socket: parks are kept until PARKED confirms them (so a parker that dies mid-park loses
// nothing), wakes are acknowledged after on_wake, leave() ends cleanly, RECLAIM is answered.
#include <catch2/catch.hpp>

#include <sys/socket.h>

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

// A client with a 1.1 session to a fake parker that granted `credit`.
struct Session11 {
  TempDir dir;
  FakeParker fake{dir.file("parker.sock")};
  ClientRecorder recorder;
  Client client;

  explicit Session11(std::uint32_t credit, ClientOptions options = {}) : client(recorder.callbacks()) {
    REQUIRE(client.connect(fake.path(), "pool-a", options).ok());
    REQUIRE(pump_until(fake, [&] { return !fake.frames().empty(); }));
    auto hello = fake.take<protocol::Hello>();
    REQUIRE(hello.size() == 1);
    CHECK(hello[0].first.minor == protocol::kOwnerMinor);  // the library offers its highest owner minor
    fake.welcome(credit, 65536, 1, protocol::kMinorExactlyOnce);
    REQUIRE(run_until(client, &fake, [&] { return client.connected(); }));
    REQUIRE(client.exactly_once());
  }
};

// Parks `n` fresh sockets (ids 0..n-1, blob "b<id>") and flushes; returns their inodes and peers.
std::map<std::uint64_t, ino_t> park_n(Session11& s, std::size_t n, std::vector<UniqueFd>& peers) {
  std::map<std::uint64_t, ino_t> inodes;
  for (std::size_t i = 0; i < n; ++i) {
    auto socket = make_parkable();
    inodes[i] = inode_of(socket.parked.get());
    peers.push_back(std::move(socket.peer));
    REQUIRE(s.client.park(socket.parked, i, "b" + std::to_string(i)).ok());
  }
  s.client.flush();
  return inodes;
}

}  // namespace

TEST_CASE("1.1: a parker that dies before confirming gives every park back, none lost", "[client][exactly_once]") {
  std::size_t baseline = open_fd_count();
  {
    Session11 s(500);
    std::vector<UniqueFd> peers;
    auto inodes = park_n(s, 300, peers);
    // Parker reads everything (and its copies die with it) but confirms nothing.
    REQUIRE(pump_until(s.fake, [&] { return s.fake.take<protocol::Park>().size() > 0; }));
    s.fake.drain_and_close();
    s.fake.stop_listening();
    REQUIRE(run_until(s.client, nullptr, [&] { return !s.recorder.disconnected.empty(); }));
    std::set<std::uint64_t> ids;
    for (RejectedPark& back : s.recorder.rejected) {
      CHECK_FALSE(back.reason.has_value());
      CHECK(back.blob == "b" + std::to_string(back.id));
      CHECK(inode_of(back.fd.get()) == inodes.at(back.id));  // the very same connection
      ids.insert(back.id);
    }
    CHECK(ids.size() == 300);
    CHECK(s.client.unconfirmed_parks() == 0);
    s.recorder.rejected.clear();
    s.client.close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("1.1: PARKED confirms parks in order and the library lets go of its copies", "[client][exactly_once]") {
  std::size_t baseline = open_fd_count();
  {
    Session11 s(100);
    std::vector<UniqueFd> peers;
    std::size_t before = open_fd_count();
    (void)park_n(s, 10, peers);
    CHECK(s.client.unconfirmed_parks() == 10);
    REQUIRE(pump_until(s.fake, [&] { return !s.fake.take<protocol::Park>().empty(); }));  // parker's copies close
    CHECK(open_fd_count() == before + 20);  // 10 peers, and the library still holds the 10 parked fds
    before += 20;
    s.fake.send(protocol::Parked{4});
    REQUIRE(run_until(s.client, &s.fake, [&] { return s.recorder.parked.size() == 4; }));
    CHECK(s.client.unconfirmed_parks() == 6);
    // The confirmed copies close at the next flush, after what it sends (parker is not kept
    // waiting for our closes before the next PARK frame).
    s.client.flush();
    CHECK(open_fd_count() == before - 4);
    // A refusal on the way: the program gets the fd back once, the library's copy closes.
    s.fake.send(protocol::Rejected{{{7, protocol::RejectReason::quota_owner, "b7"}}}, {peers[0].get()});
    s.fake.send(protocol::Parked{10});
    REQUIRE(run_until(s.client, &s.fake, [&] { return s.recorder.parked.size() == 9; }));
    CHECK(s.recorder.parked == std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 8, 9});
    REQUIRE(s.recorder.rejected.size() == 1);
    CHECK(s.recorder.rejected[0].id == 7);
    CHECK(s.client.unconfirmed_parks() == 0);
    s.recorder.rejected.clear();
    s.client.close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("1.1: wakes are acknowledged after on_wake, or when the program says so", "[client][exactly_once]") {
  bool automatic = GENERATE(true, false);
  INFO("auto_acknowledge " << automatic);
  ClientOptions options;
  options.auto_acknowledge = automatic;
  Session11 s(10, options);
  std::vector<ParkableSocket> sockets;
  std::vector<int> fds;
  protocol::Wake wake;
  for (std::uint64_t i = 0; i < 5; ++i) {
    sockets.push_back(make_parkable());
    fds.push_back(sockets.back().parked.get());
    wake.records.push_back({i, protocol::WakeReason::readable, "w"});
  }
  s.fake.send(wake, fds);
  REQUIRE(run_until(s.client, &s.fake, [&] { return s.recorder.woken.size() == 5; }));
  CHECK(s.recorder.woken.back().seq == 5);
  s.client.flush();
  s.fake.pump();
  auto acks = s.fake.take<protocol::Ack>();
  if (automatic) {
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].first.wakes == 5);
  } else {
    CHECK(acks.empty());
    CHECK(s.client.acknowledge(6).is(EINVAL));  // not received
    REQUIRE(s.client.acknowledge(3).ok());
    s.client.flush();
    REQUIRE(pump_until(s.fake, [&] { return !s.fake.frames().empty(); }));
    acks = s.fake.take<protocol::Ack>();
    REQUIRE(acks.size() == 1);
    CHECK(acks[0].first.wakes == 3);
  }
}

TEST_CASE("1.1: leave() sends GOODBYE, adopts no later wake, and ends on parker's GOODBYE", "[client][exactly_once]") {
  Session11 s(10);
  REQUIRE(s.client.leave().ok());
  CHECK(s.client.state() == Client::State::leaving);
  REQUIRE(pump_until(s.fake, [&] { return !s.fake.take<protocol::Goodbye>().empty(); }));
  auto late = make_parkable();
  s.fake.send(protocol::Wake{{{42, protocol::WakeReason::readable, "late"}}}, {late.parked.get()});
  s.fake.send(protocol::Goodbye{});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.left.empty(); }));
  CHECK(s.recorder.left[0].ok());
  CHECK(s.recorder.woken.empty());  // left to parker, which hands it to another session
  CHECK(s.client.state() == Client::State::idle);
  CHECK(s.fake.take<protocol::Ack>().empty());
}

TEST_CASE("1.1: RECLAIM is answered with the credit the client still holds", "[client][exactly_once]") {
  Session11 s(100);
  std::vector<UniqueFd> peers;
  (void)park_n(s, 30, peers);
  s.fake.send(protocol::Reclaim{90});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.fake.take<protocol::CreditReturn>().empty() || s.client.credit() == 0; }));
  CHECK(s.client.credit() == 0);  // 70 left, all given back (90 asked)
}

TEST_CASE("1.1: a session the library ends itself still acknowledges the wakes it delivered", "[client][exactly_once]") {
  Session11 s(10);
  auto socket = make_parkable();
  // A WAKE, then something only an owner sends: the library ends the session (EPROTO)
  // right after delivering the wake. Parker must hear the ACK, or it would hand the same
  // connection out again.
  std::vector<std::byte> bytes = protocol::encode(protocol::Wake{{{5, protocol::WakeReason::readable, "w"}}});
  auto bad = protocol::encode(protocol::Recall{{1}});
  bytes.insert(bytes.end(), bad.begin(), bad.end());
  s.fake.send_raw(bytes, {socket.parked.get()});
  REQUIRE(run_until(s.client, &s.fake, [&] { return !s.recorder.disconnected.empty(); }));
  CHECK(s.recorder.woken.size() == 1);
  REQUIRE(pump_until(s.fake, [&] { return !s.fake.take<protocol::Ack>().empty(); }));
}

TEST_CASE("a parker that closes right after its WAKE frames: a write that fails first still lets every wake through",
          "[client][exactly_once][peer_gone]") {
  // As parker does when it stops: it hands every parked connection back and closes. The
  // client's next write (here a RECALL) fails with EPIPE before it has read anything; the
  // WAKE frame's fds, still in its socket, are its own now and must not close with it: the
  // session ends when the loop reads the end of the stream, after the WAKE.
  std::size_t baseline = open_fd_count();
  {
    Session11 s(10);
    WakeBatch batch(5);
    s.fake.send(batch.wake, batch.fds());
    batch.let_go();
    s.fake.close_connection();
    REQUIRE(s.client.recall(99).ok());
    s.client.flush();
    REQUIRE(s.recorder.disconnected.empty());  // the failed write alone ends nothing
    REQUIRE(run_until(s.client, nullptr, [&] { return !s.recorder.disconnected.empty(); }));
    REQUIRE(s.recorder.woken.size() == 5);
    REQUIRE(s.recorder.disconnected.size() == 1);
    for (std::size_t i = 0; i < 5; ++i) {
      CHECK(s.recorder.woken[i].id == i);
      CHECK(still_connected(batch.sockets[i].peer.get(), s.recorder.woken[i].fd.get()));
    }
    s.client.close();
  }
  CHECK(open_fd_count() == baseline);
}
