// The daemon's state machine in one process: a real Daemon on its own libuv loop, peers on
// socketpairs handed to it (Daemon::adopt_peer), the loop run step by step between what the
// test sends and reads — so the moments that matter (a frame half-written, a session ended
// by parker with a park not yet confirmed) are reached on purpose, not by luck.
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <memory>

#include "daemon.hpp"
#include "parker/unix_socket.hpp"
#include "support/daemon_harness.hpp"
#include "support/fd_count.hpp"

using namespace parker;
using namespace parker::test;
using parker::daemon::Config;
using parker::daemon::Daemon;

namespace {

std::vector<std::byte> bytes_of(const std::string& s) {
  auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

// Parks the server end of every pair, ids 1..n, in full PARK frames (written, not yet read).
void park_all(RawOwner& owner, const std::vector<TcpPair>& pairs) {
  for (std::size_t first = 0; first < pairs.size(); first += proto::kMaxRecordsPerFrame) {
    proto::Park park;
    std::vector<int> fds;
    for (std::size_t i = first; i < std::min(pairs.size(), first + proto::kMaxRecordsPerFrame); ++i) {
      park.records.push_back({i + 1, 0, 0, "s"});
      fds.push_back(pairs[i].server.get());
    }
    owner.send(park, fds);
  }
}

// `n` STATS requests back to back, to send in one write.
std::vector<std::byte> stats_requests(std::size_t n) {
  const std::vector<std::byte> one = proto::encode(proto::StatsRequest{});
  std::vector<std::byte> all;
  all.reserve(one.size() * n);
  for (std::size_t i = 0; i < n; ++i) all.insert(all.end(), one.begin(), one.end());
  return all;
}

// libuv opens a process-wide signal pipe the first time a signal handle is made, and keeps
// it: make it before a test counts its fds.
std::size_t fd_baseline() {
  static bool warmed = [] {
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_signal_t signal;
    uv_signal_init(&loop, &signal);
    uv_close(reinterpret_cast<uv_handle_t*>(&signal), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0;
  }();
  (void)warmed;
  return open_fd_count();
}

class InProcessParker {
 public:
  InProcessParker() {
    uv_loop_init(&loop_);
    Config config;
    config.socket_path = dir_.file("parker.sock");
    config.handle_signals = false;
    daemon_ = std::make_unique<Daemon>(&loop_, config, 20000);
    REQUIRE(daemon_->start().ok());
  }
  ~InProcessParker() {
    daemon_->request_shutdown();
    daemon_->request_shutdown();  // the second stops at once
    uv_run(&loop_, UV_RUN_DEFAULT);
    daemon_.reset();
    CHECK(uv_loop_close(&loop_) == 0);
  }
  InProcessParker(const InProcessParker&) = delete;
  InProcessParker& operator=(const InProcessParker&) = delete;

  // A peer on a socketpair; `sndbuf` shrinks parker's side so its output backs up early.
  std::unique_ptr<RawOwner> connect(int sndbuf = 0) {
    auto pair = make_socket_pair(SOCK_STREAM, true);
    REQUIRE(pair.ok());
    if (sndbuf != 0) ::setsockopt(pair.value.first.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    daemon_->adopt_peer(std::move(pair.value.first));
    return std::make_unique<RawOwner>(std::move(pair.value.second));
  }

  // Runs the loop and lets `readers` read, until `done` or about 10 s.
  template <class Done>
  bool run_until(Done done, std::initializer_list<RawOwner*> readers = {}) {
    for (int i = 0; i < 10000; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      for (RawOwner* r : readers) r->poll_once(std::chrono::milliseconds(0));
      if (done()) return true;
      uv_sleep(1);
    }
    return false;
  }
  bool hello(RawOwner& owner, const std::string& pool, std::uint16_t minor) {
    owner.send(proto::Hello{proto::kVersionMajor, minor, pool});
    return run_until([&] { return owner.inbox().welcome.has_value() || owner.inbox().eof; }, {&owner}) &&
           owner.inbox().welcome.has_value();
  }
  // Sends more than a socket holds: a piece at a time, the loop run whenever the socket is
  // full, so parker reads the frame while it arrives, as it would from another process.
  void send_while_running(RawOwner& owner, const proto::Message& message, const std::vector<int>& fds) {
    const std::vector<std::byte> bytes = proto::encode(message);
    std::size_t done = 0;
    for (int rounds = 0; done < bytes.size() && rounds < 100000; ++rounds) {
      std::size_t n = 0;
      Error e = send_all_with_fds(owner.fd(), std::span(bytes).subspan(done),
                                  done == 0 ? std::span<const int>(fds) : std::span<const int>{}, &n);
      done += n;
      if (e.is(EAGAIN)) {
        uv_run(&loop_, UV_RUN_NOWAIT);
      } else if (e.failed()) {
        FAIL("send to parker: " << describe(e));
      }
    }
    REQUIRE(done == bytes.size());
  }
  long long metric(const std::string& name) { return test::metric(daemon_->stats_text(), name); }

 private:
  TempDir dir_;
  uv_loop_t loop_{};
  std::unique_ptr<Daemon> daemon_;
};

}  // namespace

TEST_CASE("in-process: a 1.1 session that ends with unacknowledged wakes hands them to the next one", "[daemon][inprocess]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto first = parker.connect();
    REQUIRE(parker.hello(*first, "pool", 1));
    std::vector<TcpPair> pairs;
    for (int i = 0; i < 5; ++i) pairs.push_back(listener.pair());
    for (int i = 0; i < 5; ++i) {
      first->send(proto::Park{{{static_cast<std::uint64_t>(i), 0, 0, "s"}}},
                  std::vector<int>{pairs[static_cast<std::size_t>(i)].server.get()});
      pairs[static_cast<std::size_t>(i)].server.reset();
    }
    REQUIRE(parker.run_until([&] { return first->inbox().parked == 5; }, {first.get()}));
    for (auto& p : pairs) write_text(p.client.get(), "x");
    REQUIRE(parker.run_until([&] { return first->inbox().wakes.size() == 5; }, {first.get()}));
    CHECK(parker.metric("parker_unacked_wakes") == 5);
    ino_t inode = inode_of(first->inbox().wakes[0].fd.get());
    std::uint64_t id = first->inbox().wakes[0].record.id;
    first.reset();  // gone without acknowledging: as if it died
    auto second = parker.connect();
    REQUIRE(parker.hello(*second, "pool", 1));
    REQUIRE(parker.run_until([&] { return second->inbox().wakes.size() == 5; }, {second.get()}));
    CHECK(inode_of(second->wake_for(id)->fd.get()) == inode);
    second->send(proto::Ack{5});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_unacked_wakes") == 0; }));
    CHECK(parker.metric("parker_client_fds") == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("in-process: parker ends a 1.1 session before its PARKED is written: it lets go of the park", "[daemon][inprocess]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    auto owner = parker.connect(4096);
    REQUIRE(parker.hello(*owner, "pool", 1));
    // Parker's output to this owner backs up: STATS replies it does not read.
    for (int i = 0; i < 64; ++i) owner->send(proto::StatsRequest{});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_owner_sessions") == 1; }));
    auto socket = make_socket_pair(SOCK_STREAM, true);
    REQUIRE(socket.ok());
    // A park, then garbage: parker parks it, then ends the session with a fatal bad_frame
    // while the PARKED that would confirm it is stuck behind the replies.
    auto bytes = proto::encode(proto::Park{{{9, 0, 0, "blob"}}});
    auto garbage = bytes_of("GET / HTTP/1.1\r\n\r\n");
    owner->send_bytes(bytes, std::vector<int>{socket.value.first.get()});
    owner->send_bytes(garbage);
    REQUIRE(parker.run_until([&] { return parker.metric("parker_owner_sessions") == 0; }));
    // The owner never learnt the park was accepted and keeps its own copy, so parker let go.
    CHECK(parker.metric("parker_parked_connections") == 0);
    CHECK(parker.metric("parker_client_fds") == 0);
    REQUIRE(parker.run_until([&] { return owner->inbox().eof; }, {owner.get()}));
    CHECK(owner->inbox().parked == 0);
    // The connection lives on in the owner's hands.
    CHECK(::send(socket.value.first.get(), "y", 1, MSG_NOSIGNAL) == 1);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("in-process: re-parking before acknowledging lets go of parker's old copy", "[daemon][inprocess]") {
  InProcessParker parker;
  TcpListener listener;
  auto owner = parker.connect();
  REQUIRE(parker.hello(*owner, "pool", 1));
  auto pair = listener.pair();
  owner->send(proto::Park{{{1, 0, 0, "a"}}}, std::vector<int>{pair.server.get()});
  pair.server.reset();
  write_text(pair.client.get(), "z");
  REQUIRE(parker.run_until([&] { return owner->inbox().wakes.size() == 1; }, {owner.get()}));
  CHECK(parker.metric("parker_client_fds") == 1);  // parker's copy, unacknowledged
  CHECK(read_text(owner->inbox().wakes[0].fd.get()) == "z");
  owner->send(proto::Park{{{1, 0, 0, "b"}}}, std::vector<int>{owner->inbox().wakes[0].fd.get()});
  REQUIRE(parker.run_until([&] { return owner->inbox().parked == 2; }, {owner.get()}));
  CHECK(parker.metric("parker_unacked_wakes") == 0);
  CHECK(parker.metric("parker_client_fds") == 1);  // only the parked one
  CHECK(parker.metric("parker_parked_connections") == 1);
}

TEST_CASE("in-process: an ACK of more wakes than were sent is a fatal bad_frame", "[daemon][inprocess]") {
  InProcessParker parker;
  auto owner = parker.connect();
  REQUIRE(parker.hello(*owner, "pool", 1));
  owner->send(proto::Ack{3});
  REQUIRE(parker.run_until([&] { return owner->inbox().eof; }, {owner.get()}));
  REQUIRE_FALSE(owner->inbox().errors.empty());
  CHECK(owner->inbox().errors.back().code == proto::ErrorCode::bad_frame);
}

TEST_CASE("in-process: one re-parked among several unacknowledged wakes: the rest are let go by the ACK",
          "[daemon][inprocess]") {
  InProcessParker parker;
  TcpListener listener;
  auto owner = parker.connect();
  REQUIRE(parker.hello(*owner, "pool", 1));
  std::vector<TcpPair> pairs;
  for (int i = 0; i < 3; ++i) pairs.push_back(listener.pair());
  owner->send(proto::Park{{{1, 0, 0, "a"}, {2, 0, 0, "b"}, {3, 0, 0, "c"}}},
              std::vector<int>{pairs[0].server.get(), pairs[1].server.get(), pairs[2].server.get()});
  for (auto& p : pairs) p.server.reset();
  for (auto& p : pairs) write_text(p.client.get(), "w");
  REQUIRE(parker.run_until([&] { return owner->inbox().wakes.size() == 3; }, {owner.get()}));
  CHECK(parker.metric("parker_unacked_wakes") == 3);
  const auto& second = *std::find_if(owner->inbox().wakes.begin(), owner->inbox().wakes.end(),
                                     [](const auto& w) { return w.record.id == 2; });
  CHECK(read_text(second.fd.get()) == "w");
  owner->send(proto::Park{{{2, 0, 0, "b2"}}}, std::vector<int>{second.fd.get()});
  REQUIRE(parker.run_until([&] { return owner->inbox().parked == 4; }, {owner.get()}));
  CHECK(parker.metric("parker_unacked_wakes") == 2);
  CHECK(parker.metric("parker_client_fds") == 3);  // two unacknowledged copies, one parked
  owner->send(proto::Ack{3});
  REQUIRE(parker.run_until([&] { return parker.metric("parker_unacked_wakes") == 0; }, {owner.get()}));
  CHECK(parker.metric("parker_client_fds") == 1);
  // Woken again: a fresh unacknowledged wake of the same id, released by its own ACK.
  write_text(pairs[1].client.get(), "again");
  REQUIRE(parker.run_until([&] { return owner->inbox().wakes.size() == 4; }, {owner.get()}));
  CHECK(owner->inbox().wakes[3].record.id == 2);
  CHECK(parker.metric("parker_unacked_wakes") == 1);
  owner->send(proto::Ack{4});
  REQUIRE(parker.run_until([&] { return parker.metric("parker_client_fds") == 0; }, {owner.get()}));
  CHECK(parker.metric("parker_parked_connections") == 0);
}

TEST_CASE("in-process: an ACK that ends inside a WAKE frame lets go of exactly that many and the rest survive the owner",
          "[daemon][inprocess]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto first = parker.connect();
    REQUIRE(parker.hello(*first, "pool", 1));
    std::vector<TcpPair> pairs;
    for (int i = 0; i < 4; ++i) pairs.push_back(listener.pair());
    first->send(proto::Park{{{1, 0, 0, "a"}, {2, 0, 0, "b"}, {3, 0, 0, "c"}, {4, 0, 0, "d"}}},
                std::vector<int>{pairs[0].server.get(), pairs[1].server.get(), pairs[2].server.get(),
                                 pairs[3].server.get()});
    for (auto& p : pairs) p.server.reset();
    REQUIRE(parker.run_until([&] { return first->inbox().parked == 4; }, {first.get()}));
    // One RECALL frame: the four wakes are decided in one go, so they leave in one WAKE frame.
    first->send(proto::Recall{{1, 2, 3, 4}});
    REQUIRE(parker.run_until([&] { return first->inbox().wakes.size() == 4; }, {first.get()}));
    CHECK(parker.metric("parker_unacked_wakes") == 4);
    first->send(proto::Ack{1});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_unacked_wakes") == 3; }, {first.get()}));
    first->send(proto::Ack{1});  // the same count again changes nothing
    first->send(proto::Ack{3});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_unacked_wakes") == 1; }, {first.get()}));
    CHECK(parker.metric("parker_client_fds") == 1);
    const std::uint64_t last_id = first->inbox().wakes[3].record.id;
    const ino_t inode = inode_of(first->inbox().wakes[3].fd.get());
    first.reset();  // dies: only the one it never acknowledged comes back
    auto second = parker.connect();
    REQUIRE(parker.hello(*second, "pool", 1));
    REQUIRE(parker.run_until([&] { return second->inbox().wakes.size() == 1; }, {second.get()}));
    CHECK(second->inbox().wakes[0].record.id == last_id);
    CHECK(inode_of(second->inbox().wakes[0].fd.get()) == inode);
    second->send(proto::Ack{1});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_client_fds") == 0; }, {second.get()}));
    CHECK(parker.metric("parker_unacked_wakes") == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("in-process: a RECALL of hundreds sends its full WAKE frames early and never before the parks' PARKED",
          "[daemon][inprocess]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto owner = parker.connect();
    REQUIRE(parker.hello(*owner, "pool", 1));
    constexpr std::size_t kConnections = 600;  // more than two full WAKE frames
    std::vector<TcpPair> pairs;
    for (std::size_t i = 0; i < kConnections; ++i) pairs.push_back(listener.pair());
    park_all(*owner, pairs);
    proto::Recall recall;
    for (std::size_t i = 0; i < kConnections; ++i) recall.ids.push_back(i + 1);
    // Written before parker runs: it reads the PARK frames and the RECALL in one batch, so
    // the wakes it sends while still in the RECALL must follow a PARKED covering every park.
    owner->send(recall);
    for (auto& p : pairs) p.server.reset();
    REQUIRE(parker.run_until([&] { return owner->inbox().wakes.size() == kConnections; }, {owner.get()}));
    for (const auto& w : owner->inbox().wakes) CHECK(w.parked_before == kConnections);
    CHECK(owner->inbox().rejected.empty());
    owner->send(proto::Ack{kConnections});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_client_fds") == 0; }, {owner.get()}));
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("in-process: a RECALL naming an id twice and an unknown one wakes it once and answers unknown_id for the rest",
          "[daemon][inprocess]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto owner = parker.connect();
    REQUIRE(parker.hello(*owner, "pool", 1));
    auto a = listener.pair();
    auto b = listener.pair();
    owner->send(proto::Park{{{1, 0, 0, "a"}, {2, 0, 0, "b"}}}, std::vector<int>{a.server.get(), b.server.get()});
    a.server.reset();
    b.server.reset();
    REQUIRE(parker.run_until([&] { return owner->inbox().parked == 2; }, {owner.get()}));
    owner->send(proto::Recall{{1, 1, 99}});
    REQUIRE(parker.run_until([&] { return owner->inbox().errors.size() == 2; }, {owner.get()}));
    REQUIRE(parker.run_until([&] { return owner->inbox().wakes.size() == 1; }, {owner.get()}));
    CHECK(owner->inbox().wakes[0].record.id == 1);
    CHECK(owner->inbox().errors[0].id == 1);  // the second naming: woken already
    CHECK(owner->inbox().errors[1].id == 99);
    CHECK(parker.metric("parker_parked_connections") == 1);
    // The other is still watched: its client's byte wakes it.
    write_text(b.client.get(), "b");
    REQUIRE(parker.run_until([&] { return owner->inbox().wakes.size() == 2; }, {owner.get()}));
    CHECK(owner->inbox().wakes[1].record.id == 2);
    owner->send(proto::Ack{2});
    REQUIRE(parker.run_until([&] { return parker.metric("parker_client_fds") == 0; }, {owner.get()}));
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("in-process: an owner that closes with parker's frames unread still leaves its last PARK with parker",
          "[daemon][inprocess][peer_gone]") {
  // Closing a Unix socket with unread data puts its peer in error: parker's poller sees
  // POLLERR (libuv: UV_EBADF), not readable. The PARK frame written before the close is still
  // in parker's socket, and its fd is parker's alone: the owner closed its copy, as a 1.1
  // owner does with a park whose frame parker got whole when it ends the session itself.
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto owner = parker.connect();
    REQUIRE(parker.hello(*owner, "pool", 1));
    owner->send(proto::StatsRequest{});
    REQUIRE(parker.run_until([&] {
      int unread = 0;
      return ::ioctl(owner->fd(), FIONREAD, &unread) == 0 && unread > 0;
    }));
    auto pair = listener.pair();
    owner->send(proto::Park{{{4, 0, 0, "kept"}}}, std::vector<int>{pair.server.get()});
    pair.server.reset();
    owner.reset();  // the STATS reply unread
    REQUIRE(parker.run_until([&] { return parker.metric("parker_owner_sessions") == 0; }));
    CHECK(parker.metric("parker_parked_connections") == 1);
    CHECK(::send(pair.client.get(), "y", 1, MSG_NOSIGNAL) == 1);
    pollfd p{pair.client.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // no EOF: parker holds the connection
  }
  CHECK(open_fd_count() == baseline);
}

// One 64 KiB read can hold dozens of WRITEs to hundreds of parked sockets each: an event
// handled them all (16 reads' worth) before any other peer was looked at, so under a steady
// write-through load a successor's or parkerctl's HELLO waited past its timeout. Now the
// sockets written through bound an event too: a peer that says HELLO while an owner's
// WRITE backlog waits is welcomed before that backlog is done.
TEST_CASE("in-process: a backlog of WRITEs to many parked sockets does not keep other peers waiting",
          "[daemon][inprocess][write_through]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto owner = parker.connect();
    REQUIRE(parker.hello(*owner, "pool", proto::kMinorWritesHandled));
    constexpr std::size_t kConnections = 300;
    constexpr std::size_t kWrites = 60;  // about 150 KB of WRITE frames: several reads
    std::vector<TcpPair> pairs;
    std::vector<std::uint64_t> ids;
    for (std::size_t i = 0; i < kConnections; ++i) {
      pairs.push_back(listener.pair());
      ids.push_back(i + 1);
    }
    park_all(*owner, pairs);
    for (auto& p : pairs) p.server.reset();
    REQUIRE(parker.run_until([&] { return owner->inbox().parked == kConnections; }, {owner.get()}));
    std::vector<std::byte> writes;  // in one send: the socket holds more of it so
    for (std::size_t n = 0; n < kWrites; ++n) {
      const std::vector<std::byte> frame = proto::encode(proto::Write{ids, "+news " + std::to_string(n) + "\r\n"});
      writes.insert(writes.end(), frame.begin(), frame.end());
    }
    owner->send_bytes(writes);
    auto other = parker.connect();
    other->send(proto::Hello{proto::kVersionMajor, 1, "other"});
    REQUIRE(parker.run_until([&] { return other->inbox().welcome.has_value(); }, {owner.get(), other.get()}));
    INFO("WRITE_RESULTs when the other peer was welcomed: " << owner->inbox().write_results.size());
    CHECK(owner->inbox().write_results.size() < kWrites);
    // And the backlog is all done, in order, every socket written.
    REQUIRE(parker.run_until([&] { return owner->inbox().write_results.size() == kWrites; }, {owner.get()}));
    for (std::size_t n = 0; n < kWrites; ++n) {
      CHECK(owner->inbox().write_results[n].write == n + 1);
      CHECK(owner->inbox().write_results[n].written == kConnections);
    }
    std::string first_client = read_text(pairs[0].client.get());
    CHECK(first_client.rfind("+news 0\r\n", 0) == 0);
  }
  CHECK(open_fd_count() == baseline);
}

// What parker answers a gone peer is never read, so it must not stop parker reading what
// that peer left: here 150 refused parks come back with their 60 KB blobs (9 MB of
// REJECTED, above the 4 MiB output high-water mark), and only then the owner's last PARK,
// before it closes without reading. Parker used to stop reading at the mark and close that
// connection with the session; it drops the unread answers instead and keeps the park.
TEST_CASE("in-process: an owner gone with megabytes of answers unread still leaves its last PARK with parker",
          "[daemon][inprocess][peer_gone]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto owner = parker.connect();
    REQUIRE(parker.hello(*owner, "pool", 1));
    constexpr std::size_t kRefused = 150;
    constexpr std::uint8_t kUndeclaredSet = 3 << proto::kKeepaliveSetShift;  // refused: no_rules
    std::vector<TcpPair> refused_pairs;
    proto::Park refused;
    std::vector<int> refused_fds;
    for (std::size_t i = 0; i < kRefused; ++i) {
      refused_pairs.push_back(listener.pair());
      refused.records.push_back({100 + i, 0, kUndeclaredSet, std::string(60000, 'r')});
      refused_fds.push_back(refused_pairs.back().server.get());
    }
    parker.send_while_running(*owner, refused, refused_fds);
    // The refusals have begun to come back: parker read that whole frame, and its answer
    // keeps it from reading more.
    REQUIRE(parker.run_until([&] {
      int unread = 0;
      return ::ioctl(owner->fd(), FIONREAD, &unread) == 0 && unread > 0;
    }));
    auto pair = listener.pair();
    parker.send_while_running(*owner, proto::Park{{{4, 0, 0, "kept"}}}, {pair.server.get()});
    for (auto& p : refused_pairs) p.server.reset();
    pair.server.reset();
    owner.reset();  // megabytes of REJECTED unread
    REQUIRE(parker.run_until([&] { return parker.metric("parker_owner_sessions") == 0; }));
    CHECK(parker.metric("parker_parked_connections") == 1);
    CHECK(::send(pair.client.get(), "y", 1, MSG_NOSIGNAL) == 1);
    pollfd p{pair.client.get(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // no EOF: parker holds the connection
    // The refused ones went with the owner: closed, none left open in parker.
    for (auto& r : refused_pairs) CHECK(peer_closed(r.client.get()));
  }
  CHECK(open_fd_count() == baseline);
}

// One read from a peer can hold thousands of small requests, and each STATS answer is a few
// KB: a peer that asks 5,000 times without reading must not make parker queue 5,000 answers
// at once. Parker stops handling frames at the output high-water mark (4 MiB) and goes on,
// frame by frame from where it stopped, as the peer reads — every question answered, once.
TEST_CASE("in-process: a peer asking for STATS thousands of times in one write is answered as it reads, not all at once",
          "[daemon][inprocess][flood]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    auto flooder = parker.connect();
    REQUIRE(parker.hello(*flooder, "pool", 1));
    constexpr std::size_t kRequests = 5000;
    const std::vector<std::byte> requests = stats_requests(kRequests);
    REQUIRE(requests.size() < 64 * 1024);  // one read's worth: parker has it all at once
    flooder->send_bytes(requests);
    constexpr long long kHighWater = 4 << 20;
    // Backed up (the socket took what it holds): megabytes queued, but no more than the mark.
    REQUIRE(parker.run_until([&] { return parker.metric("parker_output_queued_bytes") >= kHighWater / 2; }));
    const long long queued = parker.metric("parker_output_queued_bytes");
    INFO("bytes queued for the flooder: " << queued);
    CHECK(queued < kHighWater + (256 << 10));  // the mark, plus the answer that crossed it
    // Other peers are still served meanwhile.
    auto other = parker.connect();
    REQUIRE(parker.hello(*other, "other", 1));
    // The flooder reads: every request answered, in the end nothing left queued.
    REQUIRE(parker.run_until([&] { return flooder->inbox().stats.size() == kRequests; }, {flooder.get()}));
    CHECK(parker.metric("parker_output_queued_bytes") == 0);
    CHECK(flooder->inbox().errors.empty());
  }
  CHECK(open_fd_count() == baseline);
}

// Parker closed a parked client (it hung up) and queued CLOSED for the owner, behind answers
// the owner never read; then the owner died. That CLOSED frame was dropped with the rest of
// the unread output, so no session of the pool ever heard of the close. Now the records of
// CLOSED frames not written whole go back to the pool, as unsent wakes do: the next session
// gets them.
TEST_CASE("in-process: a CLOSED its owner never got goes to the pool's next session", "[daemon][inprocess][peer_gone]") {
  std::size_t baseline = fd_baseline();
  {
    InProcessParker parker;
    TcpListener listener;
    auto owner = parker.connect(4096);  // a small send buffer: parker's output backs up early
    REQUIRE(parker.hello(*owner, "pool", 1));
    TcpPair pair = listener.pair();
    owner->park_one(pair.server.get(), 7);
    pair.server.reset();
    REQUIRE(parker.run_until([&] { return owner->inbox().parked == 1; }, {owner.get()}));
    // The owner stops reading; answers pile up in parker.
    owner->send_bytes(stats_requests(200));
    REQUIRE(parker.run_until([&] { return parker.metric("parker_output_queued_bytes") > 0; }));
    // The client hangs up: parker closes the socket and queues CLOSED behind the answers.
    pair.client.reset();
    REQUIRE(parker.run_until([&] { return parker.metric("parker_closed_total{reason=\"hangup\"}") == 1; }));
    owner.reset();  // dies without reading
    REQUIRE(parker.run_until([&] { return parker.metric("parker_owner_sessions") == 0; }));
    auto next = parker.connect();
    REQUIRE(parker.hello(*next, "pool", 1));
    REQUIRE(parker.run_until([&] { return !next->inbox().closed.empty(); }, {next.get()}));
    REQUIRE(next->inbox().closed.size() == 1);
    CHECK(next->inbox().closed[0].id == 7);
    CHECK(next->inbox().closed[0].reason == proto::CloseReason::hangup);
  }
  CHECK(open_fd_count() == baseline);
}
