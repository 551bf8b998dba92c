// heavy_server with three parkers (--parker given three times): the parked clients spread over
// them, INFO parking shows each one's share, a parker SIGKILLed costs only its share while the
// others keep waking their clients, the restarted one takes parks again, and a graceful
// restart of heavy_server finds every client in the inventories of all three. Real parker and
// heavy_server processes, raw RESP clients and redis-cli; fd counts of every process checked.
#include <catch2/catch.hpp>

#include <csignal>
#include <string>
#include <vector>

#include "support/fd_count.hpp"
#include "support/heavy_restart_support.hpp"

using namespace heavy::test;
using namespace std::chrono_literals;
using parker::test::eventually;

namespace {

constexpr int kShards = 3;

struct Shards {
  Shards() {
    for (int i = 0; i < kShards; ++i) {
      paths.push_back(dir.file("parker" + std::to_string(i) + ".sock"));
      parkers.push_back(std::make_unique<ParkerProcess>(paths.back()));
    }
  }
  // heavy_server's arguments: --parker once per shard.
  [[nodiscard]] std::vector<std::string> args() const {
    std::vector<std::string> a;
    for (const std::string& p : paths) a.insert(a.end(), {"--parker", p});
    return a;
  }
  std::unique_ptr<HeavyServerProcess> server(int park_after_ms = 200) const {
    std::vector<std::string> a = args();
    a.insert(a.end(), {"--park-after", std::to_string(park_after_ms)});
    return std::make_unique<HeavyServerProcess>(a);
  }
  [[nodiscard]] long long parked_on(int i) const {
    return metric(parker_metrics(paths[static_cast<std::size_t>(i)]), "parker_parked_connections");
  }
  parker::test::TempDir dir;
  std::vector<std::string> paths;
  std::vector<std::unique_ptr<ParkerProcess>> parkers;
};

// "path=...,connected=1,parked=12,credit=2000" -> the value of `key`, or -1.
long long shard_figure(const HeavyServerProcess& server, int shard, const std::string& key) {
  const std::string line = server.info_field("shard" + std::to_string(shard));
  const auto at = line.find(key + "=");
  if (at == std::string::npos) return -1;
  return std::stoll(line.substr(at + key.size() + 1));
}

}  // namespace

TEST_CASE("heavy: three parkers share the parked clients and a SIGKILLed one costs only its share",
          "[heavy][parking][shards]") {
  constexpr int kClients = 90;
  Shards shards;
  auto server = shards.server();
  auto clients = parked_clients_with_sessions(*server, kClients);
  REQUIRE(clients.size() == kClients);

  // Every parker holds some (parks go where the credit is), the three shares add up, and INFO
  // parking says the same as each parker's own gauge.
  CHECK(server->info_field("parker_shards") == "3");
  CHECK(server->info_field("parker_shards_connected") == "3");
  std::vector<long long> share(kShards);
  REQUIRE(eventually([&] {
    long long sum = 0;
    for (int i = 0; i < kShards; ++i) sum += share[static_cast<std::size_t>(i)] = shards.parked_on(i);
    return sum == kClients;
  }, 30s));
  for (int i = 0; i < kShards; ++i) {
    INFO("shard " << i);
    CHECK(share[static_cast<std::size_t>(i)] > 0);
    CHECK(shard_figure(*server, i, "parked") == share[static_cast<std::size_t>(i)]);
    CHECK(shard_figure(*server, i, "connected") == 1);
    // Where the fds are: each parker holds its share, heavy_server none of them.
    CHECK(parker::test::open_fd_count(shards.parkers[static_cast<std::size_t>(i)]->pid()) >=
          static_cast<std::size_t>(share[static_cast<std::size_t>(i)]));
  }
  CHECK(parker::test::open_fd_count(server->pid()) < 40);

  // parker 1 dies: its clients are lost with it (they read EOF), the others are woken by their
  // own parkers and answer with their sessions.
  shards.parkers[1]->process().signal(SIGKILL);
  REQUIRE(shards.parkers[1]->process().wait(10s).has_value());
  CHECK(eventually([&] { return server->info_field("parker_shards_connected") == "2"; }, 10s));
  for (auto& c : clients) c->send({"CLIENT", "GETNAME"});
  int answered = 0, lost = 0;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    const std::string reply = clients[i]->reply(30s);
    if (reply == bulk_reply(session_name(static_cast<int>(i)))) {
      ++answered;
    } else if (reply.empty()) {
      ++lost;
    }
  }
  CHECK(lost == share[1]);
  CHECK(answered == kClients - share[1]);
  CHECK(server->cli("PING").output == "PONG\n");  // a real redis-cli, served meanwhile

  // parker 1 is back on its socket: heavy_server reconnects, its inventory is empty (the lost
  // share is forgotten), and new parks go to it again.
  shards.parkers[1] = std::make_unique<ParkerProcess>(shards.paths[1]);
  CHECK(eventually([&] { return server->info_field("parker_shards_connected") == "3"; }, 20s));
  CHECK(eventually([&] { return shards.parked_on(1) > 0; }, 30s));  // the clients that answered park again
  CHECK(eventually([&] {
    return info_number(*server, "parked_connections") == answered &&
           shards.parked_on(0) + shards.parked_on(1) + shards.parked_on(2) == answered;
  }, 30s));
  CHECK(server->process().wait_for_output("holds none of " + std::to_string(share[1]), 10s));  // the lost share forgotten
}

TEST_CASE("heavy: a graceful restart over three parkers finds every client in the inventories of all three",
          "[heavy][parking][shards][restart]") {
  constexpr int kClients = 60;
  Shards shards;
  auto server = shards.server();
  auto clients = parked_clients_with_sessions(*server, kClients);
  REQUIRE(clients.size() == kClients);
  for (int i = 0; i < kShards; ++i) CHECK(eventually([&] { return shards.parked_on(i) > 0; }, 10s));

  // TERM: everything (the listener too) goes to the parkers; the successor asks each for its
  // inventory, takes the listener back from whichever holds it, and wakes clients from all.
  std::vector<std::string> extra = shards.args();
  extra.erase(extra.begin(), extra.begin() + 2);  // restart() gives the first --parker itself
  auto next = restart(std::move(server), shards.paths[0], 200, extra);
  CHECK(eventually([&] { return info_number(*next, "parked_connections") >= kClients; }, 20s));
  for (auto& c : clients) c->send({"CLIENT", "GETNAME"});
  CHECK(answered_with_their_names(clients) == kClients);
  CHECK(dbs_kept(clients));
  CHECK(next->cli("PING").output == "PONG\n");
  CHECK(next->process().wait_for_output("took over the listening socket", 10s));
  CHECK(next->process().output().find("holds none of") == std::string::npos);  // no shard forgot anything
}

TEST_CASE("heavy: --parker given twice for one socket is refused with a clear error", "[heavy][parking][shards]") {
  const auto r = parker::test::run_command(parker::test::program_path("heavy_server") +
                                           " --port 0 --parker /tmp/a.sock --parker /tmp/a.sock 2>&1");
  CHECK(r.code == 2);
  CHECK(r.output.find("given twice") != std::string::npos);
}
