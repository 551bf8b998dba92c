// A parker hands everything over to its successor (`parker --take-over`, and SIGUSR2 which
// starts one): real processes, real TCP connections parked, every one counted on the far
// side — and a successor that goes away half-way costs nothing.
#include <sys/socket.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "support/daemon_harness.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;

namespace {

constexpr std::size_t kClients = 300;

struct Parked {
  TcpListener listener;
  std::vector<TcpPair> pairs;
};

// kClients connections parked by a 1.1 owner of pool "web" (ids 1..N; every third with a
// deadline an hour away), confirmed; the owner's copies closed.
void park_clients(RawOwner& owner, Parked& parked) {
  REQUIRE(owner.hello("web", proto::kVersionMajor, 1));
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::size_t i = 0; i < kClients; ++i) {
    parked.pairs.push_back(parked.listener.pair());
    records.push_back({i + 1, i % 3 == 0 ? 3600000u : 0u, 0, "session-" + std::to_string(i + 1)});
    fds.push_back(parked.pairs.back().server.get());
  }
  owner.park(records, fds);
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == kClients; }));
  for (auto& p : parked.pairs) p.server.reset();
}

// Every client speaks; `owner` gets each connection back with its blob, the same socket.
void all_come_back(RawOwner& owner, Parked& parked) {
  for (std::size_t i = 0; i < kClients; ++i) write_text(parked.pairs[i].client.get(), "ping " + std::to_string(i + 1));
  REQUIRE(owner.wait_for([&] { return owner.inbox().wakes.size() == kClients; }, 20s));
  for (auto& w : owner.inbox().wakes) {
    REQUIRE(w.record.id >= 1);
    REQUIRE(w.record.id <= kClients);
    CHECK(w.record.blob == "session-" + std::to_string(w.record.id));
    CHECK(read_text(w.fd.get()) == "ping " + std::to_string(w.record.id));
  }
}

long long metric_of(RawOwner& owner, const std::string& name) {
  owner.inbox().stats.clear();
  owner.send(proto::StatsRequest{});
  if (!owner.wait_for([&] { return !owner.inbox().stats.empty(); })) return -1;
  return metric(owner.inbox().stats.back(), name);
}

std::vector<std::string> successor_argv(const std::string& socket) {
  return {program_path("parker"), "--socket", socket, "--take-over"};
}

}  // namespace

TEST_CASE("take-over: the successor gets the listener and every parked connection and the old parker exits 0",
          "[daemon][takeover]") {
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  Parked parked;
  RawOwner owner(socket);
  park_clients(owner, parked);

  Process successor(successor_argv(socket));
  REQUIRE(successor.wait_for_output("listening on", 20s));
  auto status = old_parker.process().wait(20s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
  // The owner's session was ended by parker, with a reason it can act on.
  REQUIRE(owner.wait_for([&] { return owner.inbox().eof; }));
  REQUIRE_FALSE(owner.inbox().errors.empty());
  CHECK(owner.inbox().errors.back().code == proto::ErrorCode::shutting_down);
  // The socket file is still there, served by the successor.
  struct stat st {};
  REQUIRE(::stat(socket.c_str(), &st) == 0);

  RawOwner again(socket);
  auto welcome = again.hello("web", proto::kVersionMajor, 1);
  REQUIRE(welcome.has_value());
  CHECK(welcome->parked_in_pool == kClients);
  CHECK(metric_of(again, "parker_parked_connections") == static_cast<long long>(kClients));
  all_come_back(again, parked);
  successor.signal(SIGTERM);
  REQUIRE(successor.wait(20s).has_value());
}

TEST_CASE("take-over: a successor that goes away half-way loses nothing and the old parker serves on",
          "[daemon][takeover][fault]") {
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  std::size_t baseline = old_parker.fd_count();
  Parked parked;
  {
    RawOwner owner(socket);
    park_clients(owner, parked);
  }
  {
    // A successor that asks for everything, receives it all, and dies before TAKEN.
    RawOwner fake(socket);
    REQUIRE(fake.hello("", proto::kVersionMajor, 1));
    fake.send(proto::TakeOver{100000});
    REQUIRE(fake.wait_for([&] { return fake.inbox().handover_end.has_value(); }, 20s));
    CHECK(fake.inbox().handover.size() == kClients + 1);  // the listener too
    CHECK(fake.inbox().handover_end->records == kClients + 1);
    CHECK(fake.inbox().handover_fds.size() == kClients + 1);
  }
  // Everything is parked again in the old parker, which accepts again.
  RawOwner owner(socket);
  auto welcome = owner.hello("web", proto::kVersionMajor, 1);
  REQUIRE(welcome.has_value());
  CHECK(welcome->parked_in_pool == kClients);
  all_come_back(owner, parked);
  owner.send(proto::Ack{kClients});
  CHECK(old_parker.settle_fd_count(baseline + 1) == baseline + 1);  // + this owner's session
}

TEST_CASE("take-over: refused to a successor without room and on a 1.0 session", "[daemon][takeover]") {
  ParkerProcess old_parker;
  Parked parked;
  RawOwner owner(old_parker.socket_path());
  park_clients(owner, parked);
  RawOwner small(old_parker.socket_path());
  REQUIRE(small.hello("", proto::kVersionMajor, 1));
  small.send(proto::TakeOver{10});
  REQUIRE(small.wait_for([&] { return small.inbox().eof; }));
  REQUIRE_FALSE(small.inbox().errors.empty());
  CHECK(small.inbox().errors.back().code == proto::ErrorCode::not_allowed);
  CHECK(small.inbox().handover.empty());
  // Nothing changed for the owner.
  CHECK_FALSE(owner.inbox().eof);
  CHECK(metric_of(owner, "parker_parked_connections") == static_cast<long long>(kClients));
  // A 1.0 session may not ask at all.
  RawOwner old_style(old_parker.socket_path());
  REQUIRE(old_style.hello("", proto::kVersionMajor, 0));
  old_style.send(proto::TakeOver{100000});
  REQUIRE(old_style.wait_for([&] { return old_style.inbox().eof; }));
  CHECK(old_style.inbox().errors.back().code == proto::ErrorCode::bad_frame);
}

TEST_CASE("take-over: SIGUSR2 starts the successor which takes every connection", "[daemon][takeover]") {
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  Parked parked;
  {
    RawOwner owner(socket);
    park_clients(owner, parked);
  }
  old_parker.process().signal(SIGUSR2);
  auto status = old_parker.process().wait(20s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
  // The successor is not our child (and SO_PEERCRED names whoever called listen(), the old
  // parker): found by its command line, and stopped whatever happens below.
  auto found = find_take_over_parker(socket);
  REQUIRE(found.has_value());
  pid_t successor = *found;
  REQUIRE(successor != old_parker.pid());
  StrayProcess stop(successor, SIGTERM);
  RawOwner again(socket);
  auto welcome = again.hello("web", proto::kVersionMajor, 1);
  REQUIRE(welcome.has_value());
  CHECK(welcome->parked_in_pool == kClients);
  all_come_back(again, parked);
}

namespace {

// The cumulative series a hand-over must carry, read from one parker.
struct CounterReading {
  long long parks = 0, readable = 0, not_socket = 0, sessions = 0, time_parked = 0, delivered = 0;
};
CounterReading read_counters(RawOwner& session) {
  CounterReading r;
  r.parks = metric_of(session, "parker_parks_total");
  const std::string& text = session.inbox().stats.back();
  r.readable = metric(text, "parker_wakes_total{reason=\"readable\"}");
  r.not_socket = metric(text, "parker_rejected_total{reason=\"not_socket\"}");
  r.sessions = metric(text, "parker_sessions_total");
  r.time_parked = metric(text, "parker_time_parked_seconds_count");
  r.delivered = metric(text, "parker_wake_delivery_seconds_count");
  return r;
}

// Clients `from`..`to` (ids from+1..to+1) speak; `owner` gets them back and acknowledges.
void wake_range(RawOwner& owner, Parked& parked, std::size_t from, std::size_t to) {
  const std::size_t before = owner.inbox().wakes.size();
  for (std::size_t i = from; i < to; ++i) write_text(parked.pairs[i].client.get(), "ping");
  REQUIRE(owner.wait_for([&] { return owner.inbox().wakes.size() == before + (to - from); }, 20s));
  owner.send(proto::Ack{owner.inbox().wakes.size()});
}

}  // namespace

TEST_CASE("take-over: the successor continues the old parker's counters and so does the next after SIGUSR2",
          "[daemon][takeover][stats]") {
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  Parked parked;
  RawOwner owner(socket);
  park_clients(owner, parked);
  wake_range(owner, parked, 0, 10);
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  owner.park({{9999, 0, 0, "not a socket"}}, {read_end.get()});
  REQUIRE(owner.wait_for([&] { return owner.inbox().rejected.size() == 1; }));
  const CounterReading before = read_counters(owner);
  CHECK(before.parks == static_cast<long long>(kClients));
  CHECK(before.readable == 10);
  CHECK(before.not_socket == 1);
  CHECK(before.time_parked == 10);
  CHECK(before.delivered == 10);

  Process successor(successor_argv(socket));
  REQUIRE(successor.wait_for_output("listening on", 20s));
  auto status = old_parker.process().wait(20s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
  CHECK(successor.wait_for_output("continuing the predecessor's counters", 10s));

  RawOwner again(socket);
  REQUIRE(again.hello("web", proto::kVersionMajor, 1));
  CounterReading after = read_counters(again);
  CHECK(after.parks == before.parks);
  CHECK(after.readable == before.readable);
  CHECK(after.not_socket == before.not_socket);
  CHECK(after.time_parked == before.time_parked);
  CHECK(after.delivered == before.delivered);
  // The successor's own session in the old parker, then this one in the successor.
  CHECK(after.sessions == before.sessions + 2);
  CHECK(metric(again.inbox().stats.back(), "parker_parked_connections") == static_cast<long long>(kClients - 10));

  // They go on counting, and the next successor (SIGUSR2) continues from there.
  wake_range(again, parked, 10, 15);
  after = read_counters(again);
  CHECK(after.readable == 15);
  CHECK(after.time_parked == 15);
  successor.signal(SIGUSR2);
  status = successor.wait(20s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
  auto found = find_take_over_parker(socket);
  REQUIRE(found.has_value());
  pid_t next = *found;
  StrayProcess stop(next, SIGTERM);
  RawOwner third(socket);
  REQUIRE(third.hello("web", proto::kVersionMajor, 1));
  CounterReading last = read_counters(third);
  CHECK(last.parks == before.parks);
  CHECK(last.readable == 15);
  CHECK(last.not_socket == 1);
  CHECK(last.time_parked == 15);
  CHECK(last.sessions == after.sessions + 2);
  CHECK(metric(third.inbox().stats.back(), "parker_parked_connections") == static_cast<long long>(kClients - 15));
}

TEST_CASE("take-over: COUNTERS go only to a 1.2 successor and one that dies before TAKEN changes no counter",
          "[daemon][takeover][stats][fault]") {
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  std::size_t baseline = old_parker.fd_count();
  Parked parked;
  {
    RawOwner owner(socket);
    park_clients(owner, parked);
  }
  for (std::uint16_t minor : {1, 2}) {
    INFO("successor minor " << minor);
    RawOwner fake(socket);
    REQUIRE(fake.hello("", proto::kVersionMajor, minor));
    fake.send(proto::TakeOver{100000});
    REQUIRE(fake.wait_for([&] { return fake.inbox().handover_end.has_value(); }, 20s));
    CHECK(fake.inbox().handover_fds.size() == kClients + 1);
    if (minor == 1) {
      CHECK_FALSE(fake.inbox().handover_counters.has_value());
      continue;
    }
    REQUIRE(fake.inbox().handover_counters.has_value());
    bool parks_seen = false;
    for (const auto& v : fake.inbox().handover_counters->values) {
      if (v.name != "parker_parks_total") continue;
      parks_seen = true;
      CHECK(v.kind == proto::CounterKind::count);
      CHECK(v.value == kClients);
    }
    CHECK(parks_seen);
  }
  // Both went away before TAKEN: the old parker serves on, its counters as they were.
  RawOwner owner(socket);
  auto welcome = owner.hello("web", proto::kVersionMajor, 1);
  REQUIRE(welcome.has_value());
  CHECK(welcome->parked_in_pool == kClients);
  CHECK(metric_of(owner, "parker_parks_total") == static_cast<long long>(kClients));
  CHECK(metric(owner.inbox().stats.back(), "parker_sessions_total") == 4);  // owner, two fakes, owner
  all_come_back(owner, parked);
  owner.send(proto::Ack{kClients});
  CHECK(old_parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("take-over: a held wake keeps its unsent bytes and the client receives every byte in order",
          "[daemon][takeover][write]") {
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  TcpListener listener;
  auto pair = listener.pair();
  std::string accepted;
  proto::WakeRecord first_wake;
  {
    // A subscriber that does not read: 64 KiB payloads, each of its own letter, until the
    // socket is full (bounded at 400 writes); the owner is woken with the remainder.
    RawOwner owner(socket);
    REQUIRE(owner.hello("web", proto::kVersionMajor, 1));
    owner.park_one(pair.server.get(), 5, "s");
    REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
    pair.server.reset();
    std::size_t writes = 0;
    while (owner.inbox().wakes.empty() && writes < 400) {
      std::string payload(65536, static_cast<char>('a' + writes % 26));
      owner.send(proto::Write{{5}, payload});
      ++writes;
      REQUIRE(owner.wait_for([&] { return owner.inbox().write_results.size() == writes; }));
      if (owner.inbox().write_results.back().written == 1) accepted += payload;
    }
    REQUIRE(owner.wait_for_wakes(1));
    first_wake = owner.inbox().wakes[0].record;
    REQUIRE(first_wake.reason == proto::WakeReason::write_blocked);
    REQUIRE_FALSE(first_wake.unsent.empty());
    // It goes away without acknowledging: the wake, unsent bytes and all, is held.
  }
  REQUIRE(eventually([&] { return parker_metric(socket, "parker_held_wakes") == 1; }));

  Process successor(successor_argv(socket));
  REQUIRE(successor.wait_for_output("listening on", 20s));
  auto status = old_parker.process().wait(20s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
  CHECK(successor.output().find("without its") == std::string::npos);

  RawOwner again(socket);
  REQUIRE(again.hello("web", proto::kVersionMajor, 1));
  REQUIRE(again.wait_for_wakes(1));
  ReceivedWake& wake = again.inbox().wakes[0];
  CHECK(wake.record.id == 5);
  CHECK(wake.record.reason == proto::WakeReason::write_blocked);
  CHECK(wake.record.blob == "s");
  CHECK(wake.record.unsent == first_wake.unsent);
  // The client reads what is in its socket; the owner writes the remainder first, as the
  // protocol says; then its own bytes. Every accepted byte arrives, in order.
  std::string received;
  for (std::string more; !(more = read_text(pair.client.get(), 200ms, 1 << 20)).empty();) received += more;
  write_text(wake.fd.get(), wake.record.unsent + "+after\r\n");
  const std::size_t expected = accepted.size() + 8;
  REQUIRE(eventually([&] {
    received += read_text(pair.client.get(), 100ms, 1 << 20);
    return received.size() >= expected;
  }, 10s));
  CHECK(received.size() == expected);
  CHECK(received == accepted + "+after\r\n");

  // The successor's copy closes with the acknowledgement: nothing left behind.
  const std::size_t before_ack = open_fd_count(successor.pid());
  again.send(proto::Ack{1});
  CHECK(eventually([&] { return open_fd_count(successor.pid()) == before_ack - 1; }));
  successor.signal(SIGTERM);
  REQUIRE(successor.wait(20s).has_value());
}

TEST_CASE("take-over: the successor answers a parked connection's PING by its pool's rules before any owner is back",
          "[daemon][takeover][keepalive]") {
  const std::string ping = "*1\r\n$4\r\nPING\r\n";
  const std::string pong = "+PONG\r\n";
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  TcpListener listener;
  auto pair = listener.pair();
  {
    RawOwner owner(socket);
    REQUIRE(owner.hello("web", proto::kVersionMajor, 1));
    owner.send(proto::KeepaliveRules{2, {{ping, pong}}});
    owner.park_one(pair.server.get(), 3, "s", 0, static_cast<std::uint8_t>(2 << proto::kKeepaliveSetShift));
    REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
    REQUIRE(owner.inbox().rejected.empty());
    pair.server.reset();
    write_text(pair.client.get(), ping);
    CHECK(read_text(pair.client.get()) == pong);  // answered by the old parker
  }  // the owner goes away and does not come back

  Process successor(successor_argv(socket));
  REQUIRE(successor.wait_for_output("listening on", 20s));
  auto status = old_parker.process().wait(20s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
  CHECK(successor.wait_for_output("took over 1 keep-alive rule set", 10s));

  // No owner anywhere: the successor answers by the rules it took over, and wakes nothing.
  for (int i = 0; i < 3; ++i) {
    write_text(pair.client.get(), ping);
    CHECK(read_text(pair.client.get()) == pong);
  }
  CHECK(parker_metric(socket, "parker_keepalive_replies_total") == 4);  // 1 there, 3 here
  CHECK(parker_metric(socket, "parker_held_wakes") == 0);
  CHECK(parker_metric(socket, "parker_parked_connections") == 1);
  // Anything else still wakes it, for the owner, with its bytes untouched.
  RawOwner again(socket);
  REQUIRE(again.hello("web", proto::kVersionMajor, 1));
  write_text(pair.client.get(), "*1\r\n$4\r\nQUIT\r\n");
  REQUIRE(again.wait_for_wakes(1));
  CHECK(read_text(again.inbox().wakes[0].fd.get()) == "*1\r\n$4\r\nQUIT\r\n");
  again.send(proto::Ack{1});
  successor.signal(SIGTERM);
  REQUIRE(successor.wait(20s).has_value());
}
