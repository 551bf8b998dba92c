// Two heavy_servers serve one pool. One is killed (SIGKILL) with connections parked and wakes
// in flight to it (stopped first, so they sit unread in its socket): the other, already
// running, gets the wakes at once from parker (protocol 1.1: a wake its owner never
// acknowledged is parker's still) and answers each with its session; the connections still
// parked go to it when they speak.
#include <catch2/catch.hpp>

#include <signal.h>

#include "support/heavy_crowd.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kClients = 600;
constexpr int kInFlight = 300;  // the first 300 speak while their owner is stopped
constexpr int kDatabases = 16;

std::string name_of(int i) { return "c" + std::to_string(i); }
int db_of(int i) { return i % kDatabases; }
std::string value_of(int db) { return db_marker(db); }

// How many of `crowd` (client `first` onwards) got their name and their db's key back.
int answered_with_session(const Crowd& crowd, int first) {
  int n = 0;
  for (int k = 0; k < crowd.size(); ++k) {
    n += crowd.replies(k) == std::vector<std::string>{bulk(name_of(first + k)), bulk(value_of(db_of(first + k)))};
  }
  return n;
}

}  // namespace

TEST_CASE("a heavy_server of a pool of two is killed: the other answers its parked and in-flight clients with "
          "their sessions",
          "[heavy][parking][owner_crash]") {
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  const std::string socket = parker.socket_path();
  // The same keyspace in both: one key per db, from a snapshot.
  const std::string snapshot = dir.file("keys.snapshot");
  write_db_marker_snapshot(snapshot);
  const std::vector<std::string> extra = {"--session-bytes", "16K", "--snapshot", snapshot};
  auto survivor = start_parking_server(socket, 200, extra);
  auto victim = start_parking_server(socket, 200, extra);

  // Two groups of clients of the victim: one speaks while it is stopped, one after it died.
  Crowd in_flight;
  Crowd parked;
  in_flight.connect(victim->port(), kInFlight);
  parked.connect(victim->port(), kClients - kInFlight);
  auto set_up = [](Crowd& crowd, int first) {
    for (int k = 0; k < crowd.size(); ++k) {
      const int i = first + k;
      crowd.send(k, resp_command({"CLIENT", "SETNAME", name_of(i)}) + resp_command({"SELECT", std::to_string(db_of(i))}));
    }
    crowd.read_replies(2, Clock::now() + 30s);
    int ok = 0;
    for (int k = 0; k < crowd.size(); ++k) ok += crowd.replies(k) == std::vector<std::string>{"+OK\r\n", "+OK\r\n"};
    crowd.clear_replies();
    return ok;
  };
  REQUIRE(set_up(in_flight, 0) + set_up(parked, kInFlight) == kClients);
  auto speak = [](Crowd& crowd) {
    for (int k = 0; k < crowd.size(); ++k) crowd.send(k, resp_command({"CLIENT", "GETNAME"}) + resp_command({"GET", "k"}));
  };
  std::map<std::string, long long> stats;
  REQUIRE(eventually([&] {
    stats = parker_metrics(socket);
    return metric(stats, "parker_parked_connections") == kClients;
  }, 30s));

  // Stopped, then the first group speaks: parker wakes them towards it, and they wait there.
  victim->process().signal(SIGSTOP);
  speak(in_flight);
  REQUIRE(eventually([&] {
    stats = parker_metrics(socket);
    return metric(stats, "parker_parked_connections") == kClients - kInFlight;
  }, 30s));
  CHECK(metric(stats, "parker_unacked_wakes") > 0);  // some reached the stopped process whole

  victim->process().signal(SIGKILL);
  REQUIRE(victim->process().wait(10s).has_value());
  in_flight.read_replies(2, Clock::now() + 30s, [&] { survivor->process().drain_output(1ms); });
  CHECK(answered_with_session(in_flight, 0) == kInFlight);

  // The ones still parked speak now: woken to the survivor, with their sessions.
  speak(parked);
  parked.read_replies(2, Clock::now() + 30s, [&] { survivor->process().drain_output(1ms); });
  CHECK(answered_with_session(parked, kInFlight) == kClients - kInFlight);
  INFO("survivor's log:\n" << survivor->process().output());
  CHECK(info_number(*survivor, "wakes_total") >= kClients);
}
