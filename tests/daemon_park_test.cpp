// parker daemon: parking and waking single connections, each reason, each refusal.
// Real parker process, real TCP loopback sockets, a raw protocol owner.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "support/daemon_harness.hpp"

using namespace parker;
using namespace parker::test;
using proto::CloseReason;
using proto::RejectReason;
using proto::WakeReason;

TEST_CASE("a parked connection comes back readable with its id and blob when the client writes", "[daemon][park]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  REQUIRE(owner.inbox().welcome->credit > 0);
  REQUIRE(owner.inbox().welcome->max_blob == 65536);

  auto pair = listener.pair();
  ino_t server_inode = inode_of(pair.server.get());
  owner.park_one(pair.server.get(), 42, "session-state");
  pair.server.reset();  // parker holds the only server-side fd now
  REQUIRE(parker.settle_fd_count(baseline + 2) == baseline + 2);  // the session and the parked socket

  write_text(pair.client.get(), "PING\r\n");
  REQUIRE(owner.wait_for_wakes(1));
  auto& wake = owner.inbox().wakes[0];
  CHECK(wake.record.id == 42);
  CHECK(wake.record.reason == WakeReason::readable);
  CHECK(wake.record.blob == "session-state");
  CHECK(inode_of(wake.fd.get()) == server_inode);
  CHECK(read_text(wake.fd.get()) == "PING\r\n");  // parker never read the client's bytes
  REQUIRE(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("a connection with data already waiting is handed straight back", "[daemon][park]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  auto pair = listener.pair();
  write_text(pair.client.get(), "early");
  pollfd ready{pair.server.get(), POLLIN, 0};
  REQUIRE(::poll(&ready, 1, 5000) == 1);  // the bytes are in the server end's receive queue
  owner.park_one(pair.server.get(), 7, "b");
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().wakes[0].record.reason == WakeReason::readable);
}

TEST_CASE("data followed by FIN is a readable wake, not a close", "[daemon][park][hangup]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  auto pair = listener.pair();
  owner.park_one(pair.server.get(), 1, "x");
  pair.server.reset();
  write_text(pair.client.get(), "last words");
  ::shutdown(pair.client.get(), SHUT_WR);
  REQUIRE(owner.wait_for_wakes(1));
  auto& wake = owner.inbox().wakes[0];
  CHECK(wake.record.reason == WakeReason::readable);
  CHECK(read_text(wake.fd.get()) == "last words");
  CHECK(peer_closed(wake.fd.get()));
  CHECK(owner.inbox().closed.empty());
}

TEST_CASE("a bare hang-up is closed and reported, or handed back when asked", "[daemon][park][hangup]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));

  SECTION("without wake_on_hangup: CLOSED hangup, fd closed in parker") {
    auto pair = listener.pair();
    owner.park_one(pair.server.get(), 5, "blob");
    pair.server.reset();
    pair.client.reset();
    REQUIRE(owner.wait_for_closed(1));
    CHECK(owner.inbox().closed[0].id == 5);
    CHECK(owner.inbox().closed[0].reason == CloseReason::hangup);
    CHECK(owner.inbox().wakes.empty());
    CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
    CHECK(parker_metric(parker.socket_path(), "parker_closed_total{reason=\"hangup\"}") == 1);
  }
  SECTION("with wake_on_hangup: WAKE hangup with the fd") {
    auto pair = listener.pair();
    owner.park_one(pair.server.get(), 6, "blob", 0, proto::kWakeOnHangup);
    pair.server.reset();
    pair.client.reset();
    REQUIRE(owner.wait_for_wakes(1));
    CHECK(owner.inbox().wakes[0].record.id == 6);
    CHECK(owner.inbox().wakes[0].record.reason == WakeReason::hangup);
    CHECK(owner.inbox().wakes[0].record.blob == "blob");
    CHECK(peer_closed(owner.inbox().wakes[0].fd.get()));
  }
  SECTION("a reset with wake_on_hangup is handed back as a hang-up") {
    auto pair = listener.pair();
    owner.park_one(pair.server.get(), 8, "", 0, proto::kWakeOnHangup);
    pair.server.reset();
    linger lin{1, 0};  // close with RST
    ::setsockopt(pair.client.get(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
    pair.client.reset();
    REQUIRE(owner.wait_for_wakes(1));
    CHECK(owner.inbox().wakes[0].record.reason == WakeReason::hangup);
  }
}

TEST_CASE("a parked listening socket wakes when a connection is pending", "[daemon][park][listener]") {
  ParkerProcess parker;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("srv"));
  TcpListener handed_over;
  UniqueFd copy(::dup(handed_over.fd()));
  owner.park_one(copy.get(), 99, "listener");
  copy.reset();
  REQUIRE_FALSE(owner.wait_for_wakes(1, 300ms));  // nothing pending: it stays parked
  auto client = handed_over.connect();
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().wakes[0].record.id == 99);
  CHECK(owner.inbox().wakes[0].record.reason == WakeReason::readable);
  UniqueFd accepted(::accept4(owner.inbox().wakes[0].fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  CHECK(accepted.valid());
}

TEST_CASE("deadlines close or hand back, with one timer", "[daemon][park][deadline]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  std::vector<TcpPair> pairs;
  for (int i = 0; i < 4; ++i) pairs.push_back(listener.pair());
  // Two close at their deadline, two come back; one without deadline stays.
  owner.park({{1, 150, 0, "a"}, {2, 300, proto::kWakeOnDeadline, "b"}, {3, 100, proto::kWakeOnDeadline, "c"},
              {4, 250, 0, "d"}},
             {pairs[0].server.get(), pairs[1].server.get(), pairs[2].server.get(), pairs[3].server.get()});
  auto stay = listener.pair();
  owner.park_one(stay.server.get(), 5, "stays");
  for (auto& p : pairs) p.server.reset();
  stay.server.reset();

  REQUIRE(owner.wait_for([&] { return owner.inbox().wakes.size() == 2 && owner.inbox().closed.size() == 2; }));
  for (auto& w : owner.inbox().wakes) {
    CHECK(w.record.reason == WakeReason::deadline);
    CHECK((w.record.id == 2 || w.record.id == 3));
    CHECK(w.record.blob == (w.record.id == 2 ? "b" : "c"));
  }
  for (auto& c : owner.inbox().closed) {
    CHECK(c.reason == CloseReason::deadline);
    CHECK((c.id == 1 || c.id == 4));
  }
  CHECK(peer_closed(pairs[0].client.get()));
  CHECK(peer_closed(pairs[3].client.get()));
  // Only the session and the connection without deadline remain in parker.
  CHECK(parker.settle_fd_count(baseline + 2) == baseline + 2);
  CHECK_FALSE(owner.wait_for_wakes(3, 200ms));
}

TEST_CASE("recall hands back, drop closes, unknown ids get a non-fatal error", "[daemon][park][recall]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  auto a = listener.pair();
  auto b = listener.pair();
  owner.park({{10, 0, 0, "ten"}, {11, 0, 0, "eleven"}}, {a.server.get(), b.server.get()});
  a.server.reset();
  b.server.reset();

  owner.send(proto::Recall{{10, 12345}});
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().wakes[0].record.id == 10);
  CHECK(owner.inbox().wakes[0].record.reason == WakeReason::recalled);
  CHECK(owner.inbox().wakes[0].record.blob == "ten");
  REQUIRE(owner.wait_for([&] { return !owner.inbox().errors.empty(); }));
  CHECK(owner.inbox().errors[0].code == proto::ErrorCode::unknown_id);
  CHECK(owner.inbox().errors[0].id == 12345);
  CHECK_FALSE(owner.inbox().errors[0].fatal);

  owner.send(proto::Drop{{11, 10}});  // 10 was already handed back
  REQUIRE(owner.wait_for_closed(1));
  CHECK(owner.inbox().closed[0].id == 11);
  CHECK(owner.inbox().closed[0].reason == CloseReason::dropped);
  CHECK(peer_closed(b.client.get()));
  REQUIRE(owner.wait_for([&] { return owner.inbox().errors.size() == 2; }));
  CHECK(owner.inbox().errors[1].id == 10);

  // The recalled id can be parked again at once; the session is still fine.
  owner.park_one(owner.inbox().wakes[0].fd.get(), 10, "again");
  owner.inbox().wakes.clear();
  owner.send(proto::Recall{{10}});
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().wakes[0].record.blob == "again");
  CHECK_FALSE(owner.inbox().eof);
  owner.inbox().wakes.clear();
  CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("refused parks come back with their fd and a reason", "[daemon][park][reject]") {
  ParkerProcess parker({"--max-blob", "16", "--max-parked-per-owner", "2"});
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  REQUIRE(owner.inbox().welcome->max_blob == 16);
  REQUIRE(owner.inbox().welcome->max_parked_per_owner == 2);

  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  UniqueFd pipe_r(pipe_fds[0]), pipe_w(pipe_fds[1]);
  auto big = listener.pair();
  auto ok1 = listener.pair();
  auto dup_id = listener.pair();
  auto ok2 = listener.pair();
  auto over = listener.pair();
  owner.park({{1, 0, 0, "pipe"}, {2, 0, 0, std::string(17, 'x')}, {3, 0, 0, "ok"}, {3, 0, 0, "dup"},
              {4, 0, 0, "ok"}, {5, 0, 0, "over"}},
             {pipe_r.get(), big.server.get(), ok1.server.get(), dup_id.server.get(), ok2.server.get(),
              over.server.get()});
  REQUIRE(owner.wait_for_rejected(4));
  std::map<std::uint64_t, RejectReason> reasons;
  for (auto& r : owner.inbox().rejected) reasons[r.record.id] = r.record.reason;
  CHECK(reasons[1] == RejectReason::not_socket);
  CHECK(reasons[2] == RejectReason::blob_too_big);
  CHECK(reasons[5] == RejectReason::quota_owner);
  // The duplicate: the second record with id 3.
  std::size_t dup_count = 0;
  for (auto& r : owner.inbox().rejected) dup_count += r.record.reason == RejectReason::duplicate_id ? 1 : 0;
  CHECK(dup_count == 1);
  // Each refused fd is the very one we sent.
  for (auto& r : owner.inbox().rejected) {
    REQUIRE(r.fd.valid());
    if (r.record.id == 1) CHECK(inode_of(r.fd.get()) == inode_of(pipe_r.get()));
    if (r.record.id == 2) CHECK(inode_of(r.fd.get()) == inode_of(big.server.get()));
    if (r.record.id == 5) CHECK(inode_of(r.fd.get()) == inode_of(over.server.get()));
    if (r.record.reason == RejectReason::duplicate_id) CHECK(inode_of(r.fd.get()) == inode_of(dup_id.server.get()));
    // ... and the blob comes back with it, as parked.
    if (r.record.id == 1) CHECK(r.record.blob == "pipe");
    if (r.record.id == 2) CHECK(r.record.blob == std::string(17, 'x'));
    if (r.record.id == 5) CHECK(r.record.blob == "over");
    if (r.record.reason == RejectReason::duplicate_id) CHECK(r.record.blob == "dup");
  }
  owner.inbox().rejected.clear();
  CHECK(parker.settle_fd_count(baseline + 3) == baseline + 3);  // session + 2 parked

  RawOwner observer(parker.socket_path());
  REQUIRE(observer.hello(""));
  auto stats = observer.stats();
  CHECK(metric(stats, "parker_rejected_total{reason=\"not_socket\"}") == 1);
  CHECK(metric(stats, "parker_rejected_total{reason=\"blob_too_big\"}") == 1);
  CHECK(metric(stats, "parker_rejected_total{reason=\"quota_owner\"}") == 1);
  CHECK(metric(stats, "parker_rejected_total{reason=\"duplicate_id\"}") == 1);
  CHECK(metric(stats, "parker_parked_connections") == 2);
  CHECK(metric(stats, "parker_parks_total") == 2);
  CHECK(metric(stats, "parker_blob_bytes") == 4);
}

// --max-parked is the credit's ceiling too: an owner granted credit for parks that would
// only be refused sends them (and a server like heavy_server would try again every scan).
TEST_CASE("the max-parked limit caps the credit granted across pools, and a park beyond it comes back", "[daemon][park][reject]") {
  ParkerProcess parker({"--max-parked", "3"});
  TcpListener listener;
  RawOwner a(parker.socket_path());
  REQUIRE(a.hello("a"));
  CHECK(a.inbox().welcome->credit == 3);
  std::vector<TcpPair> pairs;
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::uint64_t i = 0; i < 4; ++i) {
    pairs.push_back(listener.pair());
    records.push_back({i + 1, 0, 0, ""});
    fds.push_back(pairs.back().server.get());
  }
  a.park({records.begin(), records.begin() + 3}, {fds.begin(), fds.begin() + 3});
  REQUIRE(eventually([&] { return parker_metric(parker.socket_path(), "parker_parked_connections") == 3; }));
  RawOwner b(parker.socket_path());
  REQUIRE(b.hello("b"));
  CHECK(b.inbox().welcome->credit == 0);  // parker is full: nothing to grant
  CHECK(parker_metric(parker.socket_path(), "parker_credit_outstanding") == 0);
  // A 1.0 peer sending anyway gets its fd back.
  b.send(proto::Park{{records[3]}}, std::vector<int>{fds[3]});
  REQUIRE(b.wait_for_rejected(1));
  CHECK(b.inbox().rejected[0].record.reason == RejectReason::no_credit);
  CHECK(inode_of(b.inbox().rejected[0].fd.get()) == inode_of(pairs[3].server.get()));
  CHECK(parker_metric(parker.socket_path(), "parker_parked_connections") == 3);
}

TEST_CASE("parks beyond the granted credit come back as no_credit", "[daemon][park][credit]") {
  // A small fd limit makes the credit small and lets the test use all of it: parker then
  // has no room to grant more, and whatever comes beyond it must be refused.
  ParkerProcess parker({}, {"/usr/bin/prlimit", "--nofile=200:200"});
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  std::uint32_t credit = owner.inbox().welcome->credit;
  REQUIRE(credit > 0);
  REQUIRE(credit < 200);
  std::vector<TcpPair> pairs;
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::uint32_t i = 0; i < credit + 3; ++i) {
    pairs.push_back(listener.pair());
    records.push_back({i + 1, 0, 0, ""});
    fds.push_back(pairs.back().server.get());
  }
  owner.inbox().credit = credit + 3;  // a buggy owner ignoring its credit
  owner.park(records, fds);
  REQUIRE(owner.wait_for_rejected(3));
  for (auto& r : owner.inbox().rejected) {
    CHECK(r.record.reason == RejectReason::no_credit);
    CHECK(r.record.id > credit);
  }
  CHECK_FALSE(owner.wait_for_rejected(4, 200ms));
  CHECK_FALSE(owner.inbox().eof);
  CHECK(metric(owner.stats(), "parker_parked_connections") == credit);
}

TEST_CASE("a blocking socket is given back blocking", "[daemon][park]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web"));
  auto blocking = listener.pair();
  auto nonblocking = listener.pair();
  REQUIRE(set_nonblocking(nonblocking.server.get()).ok());
  owner.park({{1, 0, 0, ""}, {2, 0, 0, ""}}, {blocking.server.get(), nonblocking.server.get()});
  blocking.server.reset();
  nonblocking.server.reset();
  owner.send(proto::Recall{{1, 2}});
  REQUIRE(owner.wait_for_wakes(2));
  for (auto& w : owner.inbox().wakes) {
    bool nb = (::fcntl(w.fd.get(), F_GETFL) & O_NONBLOCK) != 0;
    CHECK(nb == (w.record.id == 2));
  }
}
