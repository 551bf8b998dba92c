// The owner dies holding wakes. heavy_server is stopped (SIGSTOP) with 2,000 clients parked;
// every client sends a request; parker wakes them all towards the stopped process (its socket
// fills, nothing is read); then it is killed (SIGKILL). A new heavy_server of the same pool,
// listening afresh on the same port, gets every one of those connections from parker and
// answers every request with the client's own session (name and db).
//
// Protocol 1.1 makes this hold: parker keeps its copy of each woken fd until the owner
// acknowledges it, and hands the unacknowledged ones of a session that ends to the next
// session of the pool. Before it, the fds in the dead process's socket buffer died with it
// (about 990 of 2,000 here).
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <vector>

#include "support/fd_count.hpp"
#include "support/heavy_crowd.hpp"
#include "support/heavy_parking_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;
using parker::test::open_fd_count;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kClients = 2000;
constexpr int kCliClients = 4;  // of them, real redis-cli processes; the rest speak raw RESP
constexpr int kRawClients = kClients - kCliClients;
constexpr int kDatabases = 16;
const std::string kReadable = R"(parker_wakes_total{reason="readable"})";

std::string name_of(int i) { return "c" + std::to_string(i); }
int db_of(int i) { return i % kDatabases; }
std::string value_of(int db) { return db_marker(db); }

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}


}  // namespace

TEST_CASE("the owner dies holding 2,000 wakes: a new heavy_server answers every client with its session",
          "[heavy][parking][owner_crash]") {
  const auto test_start = Clock::now();
  parker::test::TempDir dir;
  ParkerProcess parker(dir.file("parker.sock"));
  const std::string socket = parker.socket_path();
  // One key per db, so that a client's GET tells which db its session is in. The keyspace dies
  // with a killed process: both start from a snapshot made first.
  const std::string snapshot = dir.file("keys.snapshot");
  write_db_marker_snapshot(snapshot);
  const std::vector<std::string> extra = {"--session-bytes", "32K", "--snapshot", snapshot};
  auto first = start_parking_server(socket, 200, extra);
  const std::uint16_t port = first->port();
  std::vector<std::string> server_args = {"--parker", socket, "--park-after", "200"};
  server_args.insert(server_args.end(), extra.begin(), extra.end());
  // The first process's session is in it; at the end the second's is, instead.
  const std::size_t parker_baseline = open_fd_count(parker.pid());

  // 2,000 clients, each with its own session state.
  Crowd crowd;
  crowd.connect(port, kRawClients);
  for (int i = 0; i < kRawClients; ++i) {
    crowd.send(i, resp_command({"CLIENT", "SETNAME", name_of(i)}) + resp_command({"SELECT", std::to_string(db_of(i))}));
  }
  crowd.read_replies(2, Clock::now() + 30s);
  int set_up = 0;
  for (int i = 0; i < kRawClients; ++i) {
    set_up += crowd.replies(i) == std::vector<std::string>{"+OK\r\n", "+OK\r\n"} ? 1 : 0;
  }
  REQUIRE(set_up == kRawClients);
  const std::string redis_cli = find_program("redis-cli");
  REQUIRE(!redis_cli.empty());
  std::vector<std::unique_ptr<parker::test::Process>> clis;
  for (int i = kRawClients; i < kClients; ++i) {
    clis.push_back(std::make_unique<parker::test::Process>(std::vector<std::string>{redis_cli, "-p", std::to_string(port)},
                                                           parker::test::SpawnOptions{.pipe_stdin = true}));
    clis.back()->write_stdin("CLIENT SETNAME " + name_of(i) + "\nSELECT " + std::to_string(db_of(i)) + "\n");
  }
  for (auto& cli : clis) REQUIRE(cli->wait_for_output("OK\nOK\n", 10s));

  // All parked: parker holds every one (confirmed), heavy_server's index says so too.
  std::map<std::string, long long> stats;
  const bool all_parked = eventually([&] {
    stats = parker_metrics(socket);
    return metric(stats, "parker_parked_connections") == kClients;
  }, 30s);
  INFO("parker holds " << metric(stats, "parker_parked_connections") << " of them");
  REQUIRE(all_parked);
  CHECK(info_number(*first, "parked_connections") == kClients);
  const long long parked_at = ms_since(test_start);

  // The owner stops; every client speaks. Parker wakes them all towards it: the frames that fit
  // wait in its socket buffer, unread, the rest in parker's queue for it.
  first->process().signal(SIGSTOP);
  const long long woken_before = metric(parker_metrics(socket), kReadable);
  for (int i = 0; i < kRawClients; ++i) {
    crowd.send(i, resp_command({"CLIENT", "GETNAME"}) + resp_command({"GET", "k"}));
  }
  for (auto& cli : clis) cli->write_stdin("CLIENT GETNAME\nGET k\n");
  const bool all_woken = eventually([&] {
    stats = parker_metrics(socket);
    return metric(stats, kReadable) >= woken_before + kClients && metric(stats, "parker_parked_connections") == 0;
  }, 30s);
  INFO("woken: " << metric(stats, kReadable) - woken_before << ", still parked: "
                 << metric(stats, "parker_parked_connections") << ", unacknowledged: "
                 << metric(stats, "parker_unacked_wakes"));
  REQUIRE(all_woken);
  // Some wakes were written whole to the stopped process: only parker's copy keeps them alive.
  CHECK(metric(stats, "parker_unacked_wakes") > 0);
  const long long unacked_at_kill = metric(stats, "parker_unacked_wakes");

  // The owner dies with all of them. Parker takes back what it never acknowledged and holds
  // it for the pool.
  first->process().signal(SIGKILL);
  REQUIRE(first->process().wait(10s).has_value());
  const bool all_held = eventually([&] {
    stats = parker_metrics(socket);
    return metric(stats, "parker_held_wakes") == kClients;
  }, 10s);
  INFO("held for the pool: " << metric(stats, "parker_held_wakes"));
  CHECK(all_held);

  // A new heavy_server of the same pool on the same port (the old listener died with the old
  // process): parker hands it the held wakes, it restores each session and answers.
  const auto restart = Clock::now();
  HeavyServerProcess second(server_args, port);
  crowd.clear_replies();
  crowd.read_replies(2, restart + 30s, [&] { second.process().drain_output(1ms); });
  int answered = 0, wrong = 0, ended = 0, silent = 0;
  std::string first_wrong;
  for (int i = 0; i < kRawClients; ++i) {
    const auto& r = crowd.replies(i);
    if (r.size() >= 2) {
      if (r[0] == bulk(name_of(i)) && r[1] == bulk(value_of(db_of(i)))) {
        ++answered;
      } else {
        ++wrong;
        if (first_wrong.empty()) first_wrong = name_of(i) + ": " + r[0] + r[1];
      }
    } else if (crowd.ended(i)) {
      ++ended;
    } else {
      ++silent;
    }
  }
  for (int k = 0; k < kCliClients; ++k) {
    const int i = kRawClients + k;
    const auto left = std::max<long long>(1, 30'000 - ms_since(restart));
    if (clis[static_cast<std::size_t>(k)]->wait_for_output(name_of(i) + "\n" + value_of(db_of(i)) + "\n",
                                                           std::chrono::milliseconds(left))) {
      ++answered;
    } else {
      ++silent;
    }
  }
  const long long answer_ms = ms_since(restart);
  std::cout << "owner crash: " << answered << "/" << kClients << " clients answered with their sessions "
            << answer_ms << " ms after the new heavy_server started (" << unacked_at_kill
            << " wakes unacknowledged in the stopped process; all parked " << parked_at << " ms into the test)"
            << std::endl;
  second.process().drain_output(100ms);
  INFO("answered " << answered << "/" << kClients << " in " << answer_ms << " ms; wrong session: " << wrong << " ("
                   << first_wrong << "), connection ended: " << ended << ", no answer: " << silent);
  INFO("new heavy_server's log:\n" << second.process().output());
  CHECK(answered == kClients);
  CHECK(info_number(second, "wakes_total") >= kClients);
  CHECK(info_number(second, "park_failures_total") == 0);

  // Everyone leaves: parker's descriptors come back to what they were before the clients came.
  crowd.close_all();
  for (auto& cli : clis) {
    cli->close_stdin();
    CHECK(cli->wait(10s).has_value());
  }
  CHECK(eventually([&] { return info_number(second, "parked_connections") == 0; }, 30s));
  const bool fds_back = eventually([&] { return open_fd_count(parker.pid()) == parker_baseline; }, 30s);
  INFO("parker fds: " << open_fd_count(parker.pid()) << ", baseline " << parker_baseline);
  CHECK(fds_back);
  CHECK(metric(parker_metrics(socket), "parker_client_fds") == 0);
  std::cout << "owner crash test: " << ms_since(test_start) << " ms in all" << std::endl;
}
