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

// Gone, or a zombie no one has reaped yet (it was re-parented when its parent exited).
bool gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::string stat = run_command("cat /proc/" + std::to_string(pid) + "/stat").output;
  std::size_t paren = stat.rfind(')');
  return paren == std::string::npos || (paren + 2 < stat.size() && stat[paren + 2] == 'Z');
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
  auto found = run_command("pgrep -f -- '--socket " + socket + " --take-over'");
  REQUIRE(found.code == 0);
  pid_t successor = static_cast<pid_t>(std::stol(found.output));
  REQUIRE(successor != old_parker.pid());
  struct StopAtEnd {
    pid_t pid;
    ~StopAtEnd() {
      ::kill(pid, SIGTERM);
      eventually([&] { return gone(pid); }, 20s);
    }
  } stop{successor};
  RawOwner again(socket);
  auto welcome = again.hello("web", proto::kVersionMajor, 1);
  REQUIRE(welcome.has_value());
  CHECK(welcome->parked_in_pool == kClients);
  all_come_back(again, parked);
}
