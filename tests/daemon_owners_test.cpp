// parker daemon: owners and pools — an owner killed with SIGKILL and its successor, the
// owner grace, sessions sharing a pool, full owner sockets, access control by uid.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>

#include "support/daemon_harness.hpp"
#include "support/forked_child.hpp"

using namespace parker;
using namespace parker::test;
using proto::CloseReason;
using proto::WakeReason;


TEST_CASE("an owner killed with SIGKILL: a new owner of the pool gets the held wakes", "[daemon][owners][fault]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  constexpr int kParked = 30;
  std::vector<TcpPair> pairs;
  for (int i = 0; i < kParked; ++i) pairs.push_back(listener.pair());

  ReadySignal ready;
  pid_t child = fork_child([&] {
    RawOwner owner(parker.socket_path());
    if (!owner.hello("shop")) return 1;
    std::vector<proto::ParkRecord> records;
    std::vector<int> fds;
    for (int i = 0; i < kParked; ++i) {
      records.push_back({static_cast<std::uint64_t>(i), 0, proto::kWakeOnHangup, "state-" + std::to_string(i)});
      fds.push_back(pairs[static_cast<std::size_t>(i)].server.get());
    }
    owner.park(records, fds);
    owner.stats();  // a round trip: every park has been processed
    ready.notify();
    ::pause();
    return 0;
  });
  ChildGuard guard{child};
  for (auto& p : pairs) p.server.reset();  // the child's copies went to parker
  REQUIRE(ready.wait());
  ::kill(child, SIGKILL);
  CHECK(wait_child(child) == -SIGKILL);
  guard.pid = -1;
  REQUIRE(eventually([&] { return parker_metric(parker.socket_path(), "parker_owner_sessions") == 0; }));

  // Ten clients speak and two hang up while nobody owns the pool: their wakes are held.
  for (int i = 0; i < 10; ++i) write_text(pairs[static_cast<std::size_t>(i)].client.get(), "hello " + std::to_string(i));
  pairs[10].client.reset();
  pairs[11].client.reset();
  REQUIRE(eventually([&] { return parker_metric(parker.socket_path(), "parker_held_wakes") == 12; }));

  RawOwner successor(parker.socket_path());
  auto welcome = successor.hello("shop");
  REQUIRE(welcome);
  CHECK(welcome->parked_in_pool == kParked - 12);
  REQUIRE(successor.wait_for_wakes(12));
  std::set<std::uint64_t> ids;
  for (auto& w : successor.inbox().wakes) {
    ids.insert(w.record.id);
    CHECK(w.record.blob == "state-" + std::to_string(w.record.id));
    if (w.record.id < 10) {
      CHECK(w.record.reason == WakeReason::readable);
      CHECK(read_text(w.fd.get()) == "hello " + std::to_string(w.record.id));
    } else {
      CHECK(w.record.reason == WakeReason::hangup);
    }
  }
  CHECK(ids.size() == 12);
  CHECK(*ids.rbegin() == 11);

  // The rest are still parked, now served to the successor.
  write_text(pairs[20].client.get(), "later");
  REQUIRE(successor.wait_for_wakes(13));
  CHECK(successor.inbox().wakes.back().record.id == 20);
  successor.inbox().wakes.clear();
  CHECK(parker.settle_fd_count(baseline + 1 + (kParked - 13)) == baseline + 1 + (kParked - 13));
}

TEST_CASE("wakes held past the owner grace are closed and counted", "[daemon][owners][grace]") {
  ParkerProcess parker({"--owner-grace", "0.3"});
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  auto pair = listener.pair();
  auto quiet = listener.pair();
  {
    RawOwner owner(parker.socket_path());
    REQUIRE(owner.hello("gone"));
    owner.park({{1, 0, 0, "x"}, {2, 0, 0, "y"}}, {pair.server.get(), quiet.server.get()});
    owner.stats();
  }
  pair.server.reset();
  quiet.server.reset();
  write_text(pair.client.get(), "anyone?");
  // The woken connection is closed after the grace; the quiet one stays parked.
  CHECK(peer_closed(pair.client.get(), 5s));
  CHECK(parker_metric(parker.socket_path(), "parker_closed_total{reason=\"owner_gone\"}") == 1);
  CHECK(parker_metric(parker.socket_path(), "parker_parked_connections") == 1);
  CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("CLOSED records for an absent owner are delivered after the next HELLO", "[daemon][owners][grace]") {
  ParkerProcess parker;
  TcpListener listener;
  auto pair = listener.pair();
  {
    RawOwner owner(parker.socket_path());
    REQUIRE(owner.hello("p"));
    owner.park_one(pair.server.get(), 77);
    owner.stats();
  }
  pair.server.reset();
  pair.client.reset();  // hang-up without wake_on_hangup: parker closes it, nobody to tell
  REQUIRE(eventually([&] { return parker_metric(parker.socket_path(), "parker_closed_total{reason=\"hangup\"}") == 1; }));
  RawOwner next(parker.socket_path());
  REQUIRE(next.hello("p"));
  REQUIRE(next.wait_for_closed(1));
  CHECK(next.inbox().closed[0].id == 77);
  CHECK(next.inbox().closed[0].reason == CloseReason::hangup);
}

TEST_CASE("two sessions of one pool share its wakes", "[daemon][owners][sharing]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner a(parker.socket_path()), b(parker.socket_path());
  REQUIRE(a.hello("shared"));
  REQUIRE(b.hello("shared"));
  constexpr std::size_t kParked = 40;
  std::vector<TcpPair> pairs;
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::size_t i = 0; i < kParked; ++i) {
    pairs.push_back(listener.pair());
    records.push_back({i, 0, 0, std::to_string(i)});
    fds.push_back(pairs.back().server.get());
  }
  a.park(records, fds);  // parked by a, but they belong to the pool
  a.stats();
  for (auto& p : pairs) p.server.reset();
  for (std::size_t i = 0; i < kParked; ++i) {
    write_text(pairs[i].client.get(), "x");
    if (i % 2 == 1) ::usleep(2000);  // some one by one, some together
  }
  auto total = [&] { return a.inbox().wakes.size() + b.inbox().wakes.size(); };
  for (int i = 0; i < 200 && total() < kParked; ++i) {
    a.poll_once(20ms);
    b.poll_once(20ms);
  }
  REQUIRE(total() == kParked);
  CHECK(a.inbox().wakes.size() > 0);
  CHECK(b.inbox().wakes.size() > 0);
  std::set<std::uint64_t> ids;
  for (auto* o : {&a, &b}) {
    for (auto& w : o->inbox().wakes) {
      ids.insert(w.record.id);
      CHECK(w.record.blob == std::to_string(w.record.id));
    }
  }
  CHECK(ids.size() == kParked);
}

TEST_CASE("when the owner does not read, wakes queue in parker and none is dropped", "[daemon][owners][backpressure]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("slow"));
  // 200 wakes of 40 KiB blobs: 8 MB, far more than the socket buffer and parker's output
  // high-water mark, so most wait in parker as records.
  constexpr std::size_t kParked = 200;
  std::vector<TcpPair> pairs;
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::size_t i = 0; i < kParked; ++i) {
    pairs.push_back(listener.pair());
    records.push_back({i, 0, 0, std::string(40 * 1024, static_cast<char>('a' + i % 26))});
    fds.push_back(pairs.back().server.get());
  }
  owner.park(records, fds);
  owner.stats();
  for (auto& p : pairs) p.server.reset();
  for (auto& p : pairs) write_text(p.client.get(), "go");
  // Not reading for a while: parker must keep everything.
  REQUIRE(eventually([&] { return parker_metric(parker.socket_path(), "parker_wakes_total{reason=\"readable\"}") ==
                                  static_cast<long long>(kParked); }));
  ::usleep(200'000);
  REQUIRE(owner.wait_for_wakes(kParked, 20s));
  std::set<std::uint64_t> ids;
  for (auto& w : owner.inbox().wakes) {
    ids.insert(w.record.id);
    CHECK(w.record.blob.size() == 40 * 1024);
    CHECK(w.record.blob[0] == static_cast<char>('a' + w.record.id % 26));
  }
  CHECK(ids.size() == kParked);
  owner.inbox().wakes.clear();
  CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("an owner that dies with wakes queued in parker loses only what was in its socket", "[daemon][owners][fault]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  constexpr std::size_t kParked = 60;
  std::vector<TcpPair> pairs;
  for (std::size_t i = 0; i < kParked; ++i) pairs.push_back(listener.pair());
  ReadySignal ready;
  pid_t child = fork_child([&] {
    RawOwner owner(parker.socket_path());
    if (!owner.hello("crashy")) return 1;
    std::vector<proto::ParkRecord> records;
    std::vector<int> fds;
    for (std::size_t i = 0; i < kParked; ++i) {
      records.push_back({i, 0, 0, std::string(60 * 1024, 'z')});  // under the 64 KiB max_blob
      fds.push_back(pairs[i].server.get());
    }
    owner.park(records, fds);
    owner.stats();
    ready.notify();
    ::pause();  // never reads its wakes
    return 0;
  });
  ChildGuard guard{child};
  for (auto& p : pairs) p.server.reset();
  REQUIRE(ready.wait());
  for (auto& p : pairs) write_text(p.client.get(), "w");
  bool all_woken = eventually([&] { return parker_metric(parker.socket_path(), "parker_wakes_total{reason=\"readable\"}") ==
                                  static_cast<long long>(kParked); });
  if (!all_woken) {
    RawOwner o(parker.socket_path());
    o.hello("");
    INFO(o.stats());
    REQUIRE(all_woken);
  }
  ::kill(child, SIGKILL);
  wait_child(child);
  guard.pid = -1;

  RawOwner successor(parker.socket_path());
  REQUIRE(successor.hello("crashy"));
  // Every client is either handed to the successor or closed (its fd died in the dead
  // owner's socket buffer, where it belonged); none is left hanging in parker.
  successor.wait_for_wakes(kParked, 2s);
  std::set<std::uint64_t> woken;
  for (auto& w : successor.inbox().wakes) woken.insert(w.record.id);
  CHECK(woken.size() == successor.inbox().wakes.size());
  // Most were still queued in parker: WAKE frames are kept small, so only the few in the
  // dead owner's socket buffer (about 200 KB, 3-4 wakes, plus one frame) went with it.
  CHECK(woken.size() >= kParked - 12);
  for (std::size_t i = 0; i < kParked; ++i) {
    if (woken.count(i) == 0) CHECK(peer_closed(pairs[i].client.get(), 5s));
  }
  successor.inbox().wakes.clear();
  CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("a peer of a disallowed uid is refused, and a pool belongs to its first uid", "[daemon][owners][access]") {
  if (::geteuid() != 0) {
    WARN("needs root to run a child as another uid: skipped");
    return;
  }
  constexpr uid_t kNobody = 65534;
  auto run_as_nobody = [](const std::string& path, const std::string& pool) {
    return fork_child([&] {
      if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 90;
      RawOwner peer(path);
      auto welcome = peer.hello(pool);
      if (welcome) return 0;
      if (peer.inbox().errors.empty()) return 91;
      if (!peer.inbox().errors[0].fatal) return 92;
      if (!peer.wait_for_eof()) return 93;  // parker closes after a fatal error
      return 10 + static_cast<int>(peer.inbox().errors[0].code);
    });
  };

  SECTION("not allowed by default") {
    ParkerProcess parker({"--socket-mode", "0666"});
    ::chmod(parker.dir().path().c_str(), 0755);
    std::size_t baseline = parker.fd_count();
    int code = wait_child(run_as_nobody(parker.socket_path(), "web"));
    CHECK(code == 10 + static_cast<int>(proto::ErrorCode::not_allowed));
    CHECK(parker_metric(parker.socket_path(), "parker_refused_peers_total") == 1);
    CHECK(parker.settle_fd_count(baseline) == baseline);
    CHECK(parker.process().wait_for_output("not allowed", 5s));
  }
  SECTION("allowed with --allow-uid, but not into root's pool") {
    ParkerProcess parker({"--socket-mode", "0666", "--allow-uid", std::to_string(kNobody)});
    ::chmod(parker.dir().path().c_str(), 0755);
    RawOwner root_owner(parker.socket_path());
    REQUIRE(root_owner.hello("web"));
    CHECK(wait_child(run_as_nobody(parker.socket_path(), "web")) == 10 + static_cast<int>(proto::ErrorCode::pool_taken));
    CHECK(wait_child(run_as_nobody(parker.socket_path(), "nobodys")) == 0);
  }
  SECTION("allowed by group") {
    ParkerProcess parker({"--socket-mode", "0666", "--allow-gid", std::to_string(kNobody)});
    ::chmod(parker.dir().path().c_str(), 0755);
    CHECK(wait_child(run_as_nobody(parker.socket_path(), "web")) == 0);
  }
}
