// parker daemon, protocol 1.1: every move of a connection happens exactly once, whatever
// dies — an owner SIGKILLed holding wakes it never acknowledged, a burst of parks far beyond
// credit, credit squeezed by new peers, many sessions sharing the budget — and the 1.1
// messages that make it so (ACK, PARKED, INVENTORY, GOODBYE, RECLAIM).
#include <poll.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "parker/fd_passing.hpp"
#include "support/daemon_harness.hpp"
#include "support/forked_child.hpp"

using namespace parker;
using namespace parker::test;
using proto::WakeReason;

namespace {

constexpr std::uint16_t kMinor11 = 1;

// Quiet stream sockets to park: parker accepts any socket. Many records may reuse one: each
// received copy is a descriptor of its own in parker.
struct QuietSockets {
  std::vector<UniqueFd> parked, peers;
  explicit QuietSockets(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      auto pair = make_socket_pair(SOCK_STREAM, true);
      if (!pair.ok()) throw std::runtime_error("socketpair");
      parked.push_back(std::move(pair.value.first));
      peers.push_back(std::move(pair.value.second));
    }
  }
  [[nodiscard]] std::vector<int> raw(std::size_t n) const {
    std::vector<int> fds;
    for (std::size_t i = 0; i < n; ++i) fds.push_back(parked[i % parked.size()].get());
    return fds;
  }
};

// Sends PARK frames of 253 records each, `total` records in all, without looking at credit,
// while reading (and closing) what parker sends back — so neither side can block the other.
struct Burst {
  std::size_t rejected = 0;
  std::size_t no_credit = 0;
  bool fatal = false;

  // Reads what parker sent, counts (and closes) the fds it returned.
  void drain(RawOwner& owner, std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    while (owner.poll_once(wait)) wait = std::chrono::milliseconds(0);
    for (auto& r : owner.inbox().rejected) {
      ++rejected;
      if (r.record.reason == proto::RejectReason::no_credit) ++no_credit;
    }
    owner.inbox().rejected.clear();  // closes the returned fds
    for (auto& e : owner.inbox().errors) fatal = fatal || e.fatal;
  }
};
long long metric(RawOwner& owner, const std::string& name);

// Waits until each of `sent` records is parked or came back; returns how many are parked.
long long settle(RawOwner& owner, Burst& burst, std::size_t sent) {
  long long parked = 0;
  eventually([&] {
    burst.drain(owner, std::chrono::milliseconds(10));
    parked = metric(owner, "parker_parked_connections");
    return parked + static_cast<long long>(burst.rejected) == static_cast<long long>(sent);
  }, 30s);
  return parked;
}

Burst park_burst(RawOwner& owner, const QuietSockets& sockets, std::size_t total, std::uint64_t first_id) {
  Burst burst;
  std::vector<int> fds = sockets.raw(proto::kMaxRecordsPerFrame);
  auto drain = [&] { burst.drain(owner); };
  for (std::size_t sent = 0; sent < total && !owner.inbox().eof;) {
    std::size_t n = std::min(total - sent, proto::kMaxRecordsPerFrame);
    proto::Park frame;
    for (std::size_t i = 0; i < n; ++i) frame.records.push_back({first_id + sent + i, 0, 0, "b"});
    auto bytes = proto::encode(frame);
    // Non-blocking, with the fds on the first byte only: parker may stop reading us while it
    // waits for room, and then we must read its REJECTED frames for room to come back.
    std::size_t at = 0;
    for (int spins = 0; at < bytes.size() && spins < 200000; ++spins) {
      auto r = send_with_fds(owner.fd(), std::span(bytes).subspan(at),
                             at == 0 ? std::span<const int>(fds.data(), n) : std::span<const int>());
      if (r.ok()) {
        at += r.value;
        continue;
      }
      if (!r.error.is(EAGAIN)) throw std::runtime_error("send: " + describe(r.error));
      pollfd p{owner.fd(), POLLIN | POLLOUT, 0};
      (void)::poll(&p, 1, 100);
      drain();
    }
    REQUIRE(at == bytes.size());
    sent += n;
    drain();
  }
  return burst;
}

long long metric(ParkerProcess& parker, const std::string& name) { return parker_metric(parker.socket_path(), name); }
// Through a session that is already open (a full parker may turn a new observer away).
long long metric(RawOwner& owner, const std::string& name) {
  owner.inbox().stats.clear();
  owner.send(proto::StatsRequest{});
  if (!owner.wait_for([&] { return !owner.inbox().stats.empty(); })) return -1;
  return test::metric(owner.inbox().stats.back(), name);
}

}  // namespace

TEST_CASE("1.1: an owner SIGKILLed holding unacknowledged wakes loses none of them", "[daemon][exactly_once][fault]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  constexpr int kParked = 400;
  std::vector<TcpPair> pairs;
  for (int i = 0; i < kParked; ++i) pairs.push_back(listener.pair());

  ReadySignal parked, go;
  pid_t child = fork_child([&] {
    RawOwner owner(parker.socket_path());
    if (!owner.hello("shop", proto::kVersionMajor, kMinor11)) return 1;
    std::vector<proto::ParkRecord> records;
    std::vector<int> fds;
    for (int i = 0; i < kParked; ++i) {
      records.push_back({static_cast<std::uint64_t>(i), 0, 0, "state-" + std::to_string(i)});
      fds.push_back(pairs[static_cast<std::size_t>(i)].server.get());
    }
    owner.park(records, fds);
    if (!owner.wait_for([&] { return owner.inbox().parked == kParked; })) return 2;  // all confirmed
    parked.notify();
    // Read what parker sends — wakes included, their fds adopted — but never acknowledge.
    owner.wait_for([&] { return owner.inbox().wakes.size() >= kParked / 2; }, 20s);
    go.notify();
    ::pause();
    return 0;
  });
  ChildGuard guard{child};
  for (auto& p : pairs) p.server.reset();  // the child's copies went to parker
  REQUIRE(parked.wait());
  CHECK(metric(parker, "parker_parked_connections") == kParked);

  // Every client speaks; the child takes half the wakes (some whole in its inbox, some still
  // in its socket) and is killed before it acknowledges any.
  for (int i = 0; i < kParked; ++i) write_text(pairs[static_cast<std::size_t>(i)].client.get(), "q" + std::to_string(i));
  REQUIRE(go.wait(20s));
  CHECK(metric(parker, "parker_unacked_wakes") >= kParked / 2);
  ::kill(child, SIGKILL);
  CHECK(wait_child(child) == -SIGKILL);
  guard.pid = -1;

  RawOwner successor(parker.socket_path());
  REQUIRE(successor.hello("shop", proto::kVersionMajor, kMinor11));
  REQUIRE(successor.wait_for_wakes(kParked, 20s));
  std::set<std::uint64_t> ids;
  for (auto& w : successor.inbox().wakes) {
    CHECK(w.record.reason == WakeReason::readable);
    CHECK(w.record.blob == "state-" + std::to_string(w.record.id));
    CHECK(read_text(w.fd.get()) == "q" + std::to_string(w.record.id));  // the same connection, unread
    ids.insert(w.record.id);
  }
  CHECK(ids.size() == kParked);
  // Acknowledged: parker lets go of its copies; nothing is left behind.
  successor.send(proto::Ack{kParked});
  successor.inbox().wakes.clear();
  REQUIRE(eventually([&] { return metric(parker, "parker_unacked_wakes") == 0; }));
  CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("1.0 owners keep 1.0 rules: no PARKED, no ACK expected, woken fds released when sent", "[daemon][exactly_once][compat]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  auto welcome = owner.hello("old");
  REQUIRE(welcome);
  CHECK(welcome->minor == 0);
  auto pair = listener.pair();
  owner.park_one(pair.server.get(), 7, "s");
  pair.server.reset();
  write_text(pair.client.get(), "x");
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().parked == 0);
  CHECK(metric(parker, "parker_unacked_wakes") == 0);
  CHECK(parker.settle_fd_count(baseline + 1) == baseline + 1);
  // A 1.1 message on a 1.0 session is a protocol error.
  owner.send(proto::Ack{1});
  REQUIRE(owner.wait_for_eof());
  CHECK(owner.inbox().errors.back().code == proto::ErrorCode::bad_frame);
}

TEST_CASE("1.1: INVENTORY lists every parked record, with blob and deadline, waking none", "[daemon][exactly_once][inventory]") {
  ParkerProcess parker;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("inv", proto::kVersionMajor, kMinor11));
  constexpr std::size_t kParked = 3000;
  QuietSockets sockets(kParked);
  std::vector<proto::ParkRecord> records;
  for (std::size_t i = 0; i < kParked; ++i) {
    records.push_back({1000 + i, i % 2 == 0 ? 600'000u : 0u, proto::kWakeOnHangup,
                       std::string(100 + i % 50, static_cast<char>('a' + i % 26))});
  }
  owner.park(records, sockets.raw(kParked), 20s);
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == kParked; }, 20s));
  owner.send(proto::InventoryRequest{});
  REQUIRE(owner.wait_for([&] { return owner.inbox().inventory_done; }, 20s));
  std::map<std::uint64_t, proto::InventoryRecord> seen;
  for (auto& r : owner.inbox().inventory) seen[r.id] = r;
  REQUIRE(seen.size() == kParked);
  for (std::size_t i = 0; i < kParked; ++i) {
    const auto& r = seen.at(1000 + i);
    CHECK(r.state == proto::InventoryState::parked);
    CHECK(r.flags == proto::kWakeOnHangup);
    CHECK(r.blob == records[i].blob);
    if (i % 2 == 0) {
      CHECK(r.deadline_left_ms > 500'000);
      CHECK(r.deadline_left_ms <= 600'000);
    } else {
      CHECK(r.deadline_left_ms == 0);
    }
  }
  CHECK(owner.inbox().wakes.empty());
  CHECK(metric(parker, "parker_parked_connections") == static_cast<long long>(kParked));
}

TEST_CASE("1.1: GOODBYE hands what the owner was not sent to another session, then confirms", "[daemon][exactly_once][goodbye]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner leaving(parker.socket_path()), staying(parker.socket_path());
  REQUIRE(leaving.hello("pool", proto::kVersionMajor, kMinor11));
  REQUIRE(staying.hello("pool", proto::kVersionMajor, kMinor11));
  std::vector<TcpPair> pairs;
  for (int i = 0; i < 20; ++i) pairs.push_back(listener.pair());
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    records.push_back({static_cast<std::uint64_t>(i), 0, 0, "s"});
    fds.push_back(pairs[static_cast<std::size_t>(i)].server.get());
  }
  leaving.park(records, fds);
  for (auto& p : pairs) p.server.reset();
  leaving.send(proto::Goodbye{});
  REQUIRE(leaving.wait_for([&] { return leaving.inbox().goodbye; }));
  CHECK(leaving.inbox().parked == 20);  // every park confirmed before the GOODBYE
  // From now on wakes of the pool go to the session that stays.
  for (auto& p : pairs) write_text(p.client.get(), "hi");
  REQUIRE(staying.wait_for_wakes(20));
  leaving.poll_once(std::chrono::milliseconds(50));
  CHECK(leaving.inbox().wakes.empty());
  // Parks after GOODBYE are refused, with their fds.
  auto extra = listener.pair();
  leaving.send(proto::Park{{{99, 0, 0, "late"}}}, std::vector<int>{extra.server.get()});
  REQUIRE(leaving.wait_for_rejected(1));
  CHECK(leaving.inbox().rejected[0].fd.valid());  // it gave its credit back: no_credit, fd returned
}

TEST_CASE("a burst of 30,000 parks beyond credit: every fd is parked or returned, none truncated", "[daemon][exactly_once][credit]") {
  std::uint16_t minor = GENERATE(0, 1);
  INFO("protocol 1." << minor);
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  QuietSockets sockets(proto::kMaxRecordsPerFrame);
  {
    RawOwner owner(parker.socket_path());
    REQUIRE(owner.hello("burst", proto::kVersionMajor, minor));
    REQUIRE(set_nonblocking(owner.fd(), true).ok());
    constexpr std::size_t kTotal = 30'000;
    Burst burst = park_burst(owner, sockets, kTotal, 1);
    long long parked = settle(owner, burst, kTotal);
    INFO("parked " << parked << ", returned " << burst.rejected << " (" << burst.no_credit << " for want of credit)");
    CHECK(parked + static_cast<long long>(burst.rejected) == static_cast<long long>(kTotal));
    CHECK(parked > 2000);
    CHECK_FALSE(burst.fatal);
    CHECK_FALSE(owner.inbox().eof);
    CHECK(metric(parker, "parker_fds_truncated_total") == 0);
  }
  // The owner went away: its parked connections stay parked (held for it); none leaked.
  CHECK(metric(parker, "parker_fds_truncated_total") == 0);
  CHECK(parker.settle_fd_count(baseline + static_cast<std::size_t>(metric(parker, "parker_parked_connections"))) >=
        baseline);
}

TEST_CASE("credit squeezed by 200 new peers: parks within credit are all parked or returned", "[daemon][exactly_once][credit]") {
  std::uint16_t minor = GENERATE(0, 1);
  INFO("protocol 1." << minor);
  // A small fd limit so that the owner can fill parker up to its credit.
  ParkerProcess parker({}, {"/usr/bin/prlimit", "--nofile=3000:3000"});
  QuietSockets sockets(proto::kMaxRecordsPerFrame);
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("squeeze", proto::kVersionMajor, minor));
  // Fill parker until what is parked plus the credit the owner holds is all the room there is.
  std::uint64_t next_id = 1;
  std::size_t sent = 0;
  for (int rounds = 0; rounds < 200; ++rounds) {
    owner.poll_once(std::chrono::milliseconds(20));
    long long budget = metric(owner, "parker_fd_budget");
    long long parked = metric(owner, "parker_parked_connections");
    if (parked + static_cast<long long>(owner.inbox().credit) >= budget) break;
    std::size_t n = std::min<std::size_t>(owner.inbox().credit, proto::kMaxRecordsPerFrame);
    if (n == 0) continue;
    std::vector<proto::ParkRecord> records;
    for (std::size_t i = 0; i < n; ++i) records.push_back({next_id++, 0, 0, ""});
    owner.park(records, sockets.raw(n));
    sent += n;
  }
  std::uint64_t credit = owner.inbox().credit;
  REQUIRE(credit > 253);
  owner.inbox().reclaims.clear();
  // 200 peers try to connect and stay (observers: they say HELLO). Those beyond the room
  // parker has not promised yet are turned away at once; the rest take a slot each.
  std::vector<std::unique_ptr<RawOwner>> peers;
  int admitted = 0;
  for (int i = 0; i < 200; ++i) {
    peers.push_back(std::make_unique<RawOwner>(parker.socket_path()));
    if (peers.back()->hello("")) ++admitted;
  }
  INFO(admitted << " of 200 idle peers admitted");
  CHECK(metric(owner, "parker_peers_refused_for_room_total") == 200 - admitted);
  CHECK(admitted > 0);
  if (minor == 1) {
    // A 1.1 owner was asked for the credit the newcomers' slots came from, and gives it back
    // as the client library does; it parks within what it has left.
    owner.poll_once(std::chrono::milliseconds(100));
    std::uint64_t returned = 0;
    for (std::uint32_t wanted : owner.inbox().reclaims) {
      auto given = static_cast<std::uint32_t>(std::min<std::uint64_t>(wanted, owner.inbox().credit));
      owner.inbox().credit -= given;
      returned += given;
      owner.send(proto::CreditReturn{given});
    }
    INFO("credit given back: " << returned);
    CHECK((admitted == 200) == (returned > 0));
    credit = owner.inbox().credit;
  }
  // The owner parks everything it holds.
  REQUIRE(set_nonblocking(owner.fd(), true).ok());
  Burst burst = park_burst(owner, sockets, credit, next_id);
  sent += credit;
  long long parked = settle(owner, burst, sent);
  INFO("sent " << sent << ", parked " << parked << ", returned " << burst.rejected);
  CHECK(parked + static_cast<long long>(burst.rejected) == static_cast<long long>(sent));
  CHECK(burst.no_credit == 0);
  CHECK_FALSE(burst.fatal);
  CHECK(metric(owner, "parker_fds_truncated_total") == 0);
}

TEST_CASE("200 sessions in 20 pools: every session gets credit and parks", "[daemon][exactly_once][credit]") {
  ParkerProcess parker;
  constexpr int kSessions = 200, kPerSession = 20;
  std::vector<std::unique_ptr<RawOwner>> owners;
  // Each owner answers RECLAIM the way the client library does: it gives back what it has.
  auto service = [&](RawOwner& o) {
    o.poll_once(std::chrono::milliseconds(0));
    for (std::uint32_t wanted : o.inbox().reclaims) {
      auto given = static_cast<std::uint32_t>(std::min<std::uint64_t>(wanted, o.inbox().credit));
      o.inbox().credit -= given;
      o.send(proto::CreditReturn{given});
    }
    o.inbox().reclaims.clear();
  };
  for (int i = 0; i < kSessions; ++i) {
    owners.push_back(std::make_unique<RawOwner>(parker.socket_path()));
    REQUIRE(owners.back()->hello("pool-" + std::to_string(i % 20), proto::kVersionMajor, kMinor11));
    for (auto& o : owners) service(*o);
  }
  QuietSockets sockets(kPerSession);
  std::size_t parked_sessions = 0;
  std::vector<bool> done(kSessions, false);
  for (int round = 0; round < 2000 && parked_sessions < kSessions; ++round) {
    for (int i = 0; i < kSessions; ++i) {
      RawOwner& o = *owners[static_cast<std::size_t>(i)];
      service(o);
      if (done[static_cast<std::size_t>(i)] || o.inbox().credit < kPerSession) continue;
      std::vector<proto::ParkRecord> records;
      for (int k = 0; k < kPerSession; ++k) records.push_back({static_cast<std::uint64_t>(i * 1000 + k), 0, 0, ""});
      o.park(records, sockets.raw(kPerSession));
      done[static_cast<std::size_t>(i)] = true;
      ++parked_sessions;
    }
    if (parked_sessions < kSessions) ::usleep(2000);
  }
  INFO(parked_sessions << " of " << kSessions << " sessions got credit for " << kPerSession << " parks");
  CHECK(parked_sessions == kSessions);
  REQUIRE(eventually([&] {
    for (auto& o : owners) service(*o);
    return metric(parker, "parker_parked_connections") == kSessions * kPerSession;
  }));
  std::size_t refused = 0;
  for (auto& o : owners) refused += o->inbox().rejected.size();
  CHECK(refused == 0);
}

TEST_CASE("a peer that never says HELLO is dropped after --hello-timeout", "[daemon][exactly_once][peers]") {
  ParkerProcess parker({"--hello-timeout", "0.3"});
  std::size_t baseline = parker.fd_count();
  std::vector<std::unique_ptr<RawOwner>> silent;
  for (int i = 0; i < 50; ++i) silent.push_back(std::make_unique<RawOwner>(parker.socket_path()));
  for (auto& s : silent) {
    REQUIRE(s->wait_for_eof(5s));
    REQUIRE_FALSE(s->inbox().errors.empty());
    CHECK(s->inbox().errors.back().code == proto::ErrorCode::hello_required);
  }
  CHECK(metric(parker, "parker_hello_timeouts_total") == 50);
  silent.clear();
  CHECK(parker.settle_fd_count(baseline) == baseline);
}
