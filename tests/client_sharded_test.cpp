// parker::UvShardedClient against three real parker processes: parks spread by credit, wakes,
// recalls and write-through routed to the shard that holds each id; a shard SIGKILLed costs
// only its share; a full shard sends parks to the others; a restarted shard takes parks again.
// Real TCP loopback connections; every parker's fd count checked against what it should hold.
#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <memory>
#include <set>

#include "parker/client_sharded_uv.hpp"
#include "support/client_daemon.hpp"
#include "support/client_uv_loop.hpp"
#include "support/fd_count.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kShards = 3;

ClientOptions fast_reconnect() {
  ClientOptions options;
  options.reconnect_min = 10ms;
  options.reconnect_max = 100ms;
  return options;
}

struct ShardedRecorder {
  std::vector<std::size_t> connected;
  std::vector<std::size_t> disconnected;
  std::vector<std::pair<std::size_t, WokenConnection>> woken;
  std::vector<RejectedPark> rejected;
  std::set<std::uint64_t> parked;
  std::vector<ShardedWriteResult> writes;
  std::vector<Error> left;

  ShardedCallbacks callbacks() {
    ShardedCallbacks c;
    c.on_connected = [this](std::size_t shard, const protocol::Welcome&) { connected.push_back(shard); };
    c.on_disconnected = [this](std::size_t shard, Error, std::chrono::milliseconds) { disconnected.push_back(shard); };
    c.on_wake = [this](std::size_t shard, WokenConnection w) { woken.emplace_back(shard, std::move(w)); };
    c.on_rejected = [this](RejectedPark p) { rejected.push_back(std::move(p)); };
    c.on_parked = [this](std::uint64_t id) { parked.insert(id); };
    c.on_write_result = [this](const ShardedWriteResult& r) { writes.push_back(r); };
    c.on_left = [this](Error e) { left.push_back(e); };
    return c;
  }
};

// Three parkers in one temp dir, and a sharded client connected to all of them.
struct ThreeShards {
  // `fd_limits`: RLIMIT_NOFILE of each parker (none: the usual).
  explicit ThreeShards(const std::vector<std::string>& args = {}, const std::vector<std::size_t>& fd_limits = {}) {
    for (std::size_t i = 0; i < kShards; ++i) {
      daemons.push_back(std::make_unique<ParkerDaemon>(dir.file("parker" + std::to_string(i) + ".sock"), args));
      if (i < fd_limits.size()) daemons.back()->set_fd_limit(fd_limits[i]);
      daemons.back()->start();
      paths.push_back(daemons.back()->socket_path());
    }
  }
  TempDir dir;
  std::vector<std::unique_ptr<ParkerDaemon>> daemons;
  std::vector<std::string> paths;
  std::vector<std::size_t> base;
};

// Three parkers and a sharded client connected to all of them, on a loop of its own. The
// members go in reverse: the client, then the loop (run dry, checked), then the parkers.
struct ShardedSetup {
  explicit ShardedSetup(const std::vector<std::string>& args = {}, const std::vector<std::size_t>& fd_limits = {})
      : shards(args, fd_limits), client(std::make_unique<UvShardedClient>(loop.get(), recorder.callbacks())) {
    REQUIRE(client->connect(shards.paths, "web", fast_reconnect()).ok());
    REQUIRE(loop.run_until([&] { return client->connected_count() == kShards; }));
    // Each parker's own fds with our session open: what it holds beyond that is parked.
    for (auto& d : shards.daemons) shards.base.push_back(d->fd_count());
  }
  ThreeShards shards;
  TestLoop loop;
  ShardedRecorder recorder;
  std::unique_ptr<UvShardedClient> client;
};

// Parks `n` fresh loopback connections (ids first_id...), waiting for credit; returns them.
std::map<std::uint64_t, TcpConnection> park_many(TestLoop& loop, UvShardedClient& client, TcpLoopback& tcp,
                                                 std::uint64_t first_id, std::size_t n) {
  std::map<std::uint64_t, TcpConnection> out;
  for (std::uint64_t id = first_id; id < first_id + n; ++id) {
    TcpConnection c = tcp.connect();
    Error e;
    REQUIRE(loop.run_until([&] { return !(e = client.park(c.server_side, id, "blob-" + std::to_string(id))).is(ENOBUFS); }));
    INFO(describe(e));
    REQUIRE(e.ok());
    out.emplace(id, std::move(c));
  }
  return out;
}

bool all_confirmed(const ShardedRecorder& r, const std::map<std::uint64_t, TcpConnection>& conns) {
  for (const auto& [id, c] : conns) {
    if (!r.parked.contains(id)) return false;
  }
  return true;
}

void expect_fds_match_shares(ThreeShards& shards, UvShardedClient& client) {
  for (std::size_t i = 0; i < kShards; ++i) {
    if (!shards.daemons[i]->running()) continue;
    INFO("shard " << i);
    CHECK(shards.daemons[i]->settle_fd_count(shards.base[i] + client.held_by(i)) == shards.base[i] + client.held_by(i));
  }
}

}  // namespace

TEST_CASE("sharded parks spread over three parkers and come back from the shard that holds them", "[client][shards]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    ShardedSetup setup;
    auto& [shards, loop, recorder, client] = setup;
    TcpLoopback tcp;
    auto conns = park_many(loop, *client, tcp, 1, 30);
    REQUIRE(loop.run_until([&] { return all_confirmed(recorder, conns); }));
    for (std::size_t i = 0; i < kShards; ++i) {
      INFO("shard " << i);
      CHECK(client->held_by(i) > 0);  // equal credit: the parks go round
    }
    CHECK(client->held_by(0) + client->held_by(1) + client->held_by(2) == 30);
    expect_fds_match_shares(shards, *client);

    // Write-through: one payload to every parked connection, split by shard, one result.
    std::vector<std::uint64_t> ids;
    for (const auto& [id, c] : conns) ids.push_back(id);
    ids.push_back(999);  // never parked: not sent
    std::uint64_t number = 0;
    REQUIRE(client->write(ids, "+hello\r\n", &number).ok());
    REQUIRE(loop.run_until([&] { return !recorder.writes.empty(); }));
    CHECK(recorder.writes[0].write == number);
    CHECK(recorder.writes[0].written == 30);
    CHECK(recorder.writes[0].not_sent == std::vector<std::uint64_t>{999});
    for (auto& [id, c] : conns) CHECK(read_some(c.client_side.get()) == "+hello\r\n");

    // Recall id 1 (routed), wake id 2 by writing: each comes back from its own shard.
    const std::size_t shard_of_1 = *client->shard_of(1);
    const std::size_t shard_of_2 = *client->shard_of(2);
    CHECK(client->recall(1).ok());
    CHECK(client->recall(12345).is(ENOENT));
    write_text(conns.at(2).client_side.get(), "PING\r\n");
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == 2; }));
    for (auto& [shard, w] : recorder.woken) {
      CHECK(shard == (w.id == 1 ? shard_of_1 : shard_of_2));
      CHECK(w.blob == "blob-" + std::to_string(w.id));
      CHECK(w.fd.valid());
    }
    CHECK_FALSE(client->shard_of(1).has_value());
    expect_fds_match_shares(shards, *client);
    recorder.woken.clear();
    client->close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a SIGKILLed shard costs only its share and the others keep parking and waking", "[client][shards][faults]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    ShardedSetup setup;
    auto& [shards, loop, recorder, client] = setup;
    TcpLoopback tcp;
    auto conns = park_many(loop, *client, tcp, 1, 30);
    REQUIRE(loop.run_until([&] { return all_confirmed(recorder, conns); }));
    std::map<std::uint64_t, std::size_t> where;
    for (const auto& [id, c] : conns) where[id] = *client->shard_of(id);

    shards.daemons[1]->kill();
    REQUIRE(loop.run_until([&] { return client->connected_count() == kShards - 1; }));
    CHECK(recorder.disconnected == std::vector<std::size_t>{1});
    CHECK(recorder.rejected.empty());  // everything was confirmed before the kill

    // The dead shard's connections are gone with it (their clients read EOF); the others are
    // parked still, and wake from their own shards.
    std::size_t lost = 0;
    for (auto& [id, c] : conns) {
      if (where[id] == 1) {
        CHECK(read_some(c.client_side.get()).empty());
        ++lost;
      } else {
        write_text(c.client_side.get(), "PING\r\n");
      }
    }
    CHECK(lost > 0);
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == conns.size() - lost; }));
    for (auto& [shard, w] : recorder.woken) {
      CHECK(shard == where[w.id]);
      CHECK(shard != 1);
    }
    recorder.woken.clear();

    // New parks go to the shards still there, and are confirmed.
    auto more = park_many(loop, *client, tcp, 100, 10);
    REQUIRE(loop.run_until([&] { return all_confirmed(recorder, more); }));
    for (const auto& [id, c] : more) CHECK(client->shard_of(id) != std::optional<std::size_t>{1});
    expect_fds_match_shares(shards, *client);
    client->close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("parks go by credit to the other shards when one parker is full", "[client][shards]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    // Under 48 fds parker's credit budget is 16 parks; under 64, 30 (parker/daemon/capacity.cpp).
    ShardedSetup setup({}, {48, 64, 64});
    auto& [shards, loop, recorder, client] = setup;
    TcpLoopback tcp;
    std::map<std::uint64_t, TcpConnection> conns;
    Error last;
    for (std::uint64_t id = 1; id <= 200; ++id) {
      TcpConnection c = tcp.connect();
      last = client->park(c.server_side, id, "blob");
      if (last.is(ENOBUFS)) {
        // Maybe only waiting for CREDIT: let every park be confirmed, then try once more.
        REQUIRE(loop.run_until([&] { return all_confirmed(recorder, conns) && client->unconfirmed_parks() == 0; }));
        loop.run_until([&] { return client->credit() > 0; }, 200ms);
        last = client->park(c.server_side, id, "blob");
      }
      if (last.failed()) {
        CHECK(c.server_side.valid());  // refused at once: the fd is still ours
        break;
      }
      conns.emplace(id, std::move(c));
    }
    INFO(describe(last));
    CHECK(last.is(ENOBUFS));  // every shard full: the next park has nowhere to go
    REQUIRE(loop.run_until([&] { return all_confirmed(recorder, conns); }));
    CHECK(recorder.rejected.empty());  // credit kept every park from reaching a full parker
    INFO("held " << client->held_by(0) << " " << client->held_by(1) << " " << client->held_by(2));
    CHECK(client->held_by(0) > 0);
    CHECK(client->held_by(0) <= 16);
    CHECK(client->held_by(1) <= 30);
    CHECK(client->held_by(2) <= 30);
    CHECK(conns.size() == client->held_by(0) + client->held_by(1) + client->held_by(2));
    CHECK(conns.size() > 40);  // far more than the small shard holds: the others took the rest
    expect_fds_match_shares(shards, *client);
    client->close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a restarted shard is reconnected with back-off and takes parks again", "[client][shards][faults]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    ShardedSetup setup;
    auto& [shards, loop, recorder, client] = setup;
    shards.daemons[2]->kill();
    REQUIRE(loop.run_until([&] { return client->connected_count() == kShards - 1; }));
    TcpLoopback tcp;
    auto while_down = park_many(loop, *client, tcp, 1, 12);
    REQUIRE(loop.run_until([&] { return all_confirmed(recorder, while_down); }));
    CHECK(client->held_by(2) == 0);

    shards.daemons[2]->start();
    REQUIRE(loop.run_until([&] { return client->connected_count() == kShards; }));
    CHECK(recorder.connected.back() == 2);
    shards.base[2] = shards.daemons[2]->fd_count();
    // The restarted shard has all its credit, the others have spent some: it takes the next parks.
    auto after = park_many(loop, *client, tcp, 100, 6);
    REQUIRE(loop.run_until([&] { return all_confirmed(recorder, after); }));
    CHECK(client->held_by(2) > 0);
    expect_fds_match_shares(shards, *client);
    for (auto& [id, c] : after) {
      if (client->shard_of(id) == std::optional<std::size_t>{2}) write_text(c.client_side.get(), "PING\r\n");
    }
    const std::size_t on_2 = client->held_by(2);
    REQUIRE(loop.run_until([&] { return recorder.woken.size() == on_2; }));
    for (auto& [shard, w] : recorder.woken) CHECK(shard == 2);
    recorder.woken.clear();
    client->close();
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("leave() over three parkers reports once when every shard has confirmed and left", "[client][shards]") {
  const std::size_t baseline = fd_baseline_with_libuv();
  {
    ShardedSetup setup;
    auto& [shards, loop, recorder, client] = setup;
    TcpLoopback tcp;
    auto conns = park_many(loop, *client, tcp, 1, 9);
    REQUIRE(client->leave().ok());  // the parks still queued go first, then GOODBYE on each
    CHECK(client->leave().is(EALREADY));
    REQUIRE(loop.run_until([&] { return !recorder.left.empty(); }));
    CHECK(recorder.left.size() == 1);
    CHECK(recorder.left[0].ok());
    CHECK(recorder.rejected.empty());
    CHECK(all_confirmed(recorder, conns));
    // Every parker keeps its share after we left (the pool's connections are parker's), and
    // has closed our session's socket.
    for (std::size_t i = 0; i < kShards; ++i) {
      INFO("shard " << i);
      CHECK(client->held_by(i) > 0);
      const std::size_t want = shards.base[i] - 1 + client->held_by(i);
      CHECK(shards.daemons[i]->settle_fd_count(want) == want);
    }
    client->close();
  }
  CHECK(open_fd_count() == baseline);
}
