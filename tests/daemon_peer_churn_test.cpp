// parker daemon: control peers that come and go. 5,000 owner sessions connect, say HELLO,
// ask for STATS and LIST, some leave a big frame unfinished, and close. Parker must end where
// it started: the same fds open, its resident memory back near the baseline, still serving.
//
// Regression: every session that had sent anything kept a 64 KiB read buffer for its whole
// life, and the freed buffers stayed in parker's heap: 5,000 peers open at once took its RSS
// from 6 MB to 340 MB, still 334 MB after all of them had gone. In waves of 500, as here, it
// ended 30 MB over its baseline; now 4 MB.
//
// fd budget: the peers come in waves of 500, so this process holds at most ~500 sockets of
// its 20,000.
#include <sys/ioctl.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/sockios.h>
#endif

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <memory>

#include "support/daemon_harness.hpp"

using namespace parker;
using namespace parker::test;

namespace {

constexpr std::size_t kPeers = 5000;
constexpr std::size_t kWave = 500;
constexpr std::size_t kPartialEvery = 10;          // every 10th peer leaves a frame unfinished
constexpr std::size_t kPartialBytes = 60 * 1024;  // ... after sending this much of it

// Resident set size of `pid` in bytes (VmRSS), or 0 if it cannot be read.
std::size_t rss_of(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The first kPartialBytes of a RECALL that would name 10,000 ids: a well-formed beginning
// of a frame that never ends (80,012 bytes declared).
std::vector<std::byte> unfinished_frame() {
  proto::Recall recall;
  for (std::uint64_t id = 1; id <= 10'000; ++id) recall.ids.push_back(id);
  auto bytes = proto::encode(recall);
  REQUIRE(bytes.size() > kPartialBytes);
  bytes.resize(kPartialBytes);
  return bytes;
}

// Bytes this process wrote on a Unix socket that the peer has not read yet.
std::size_t unread_by_peer(int fd) {
#if defined(__linux__)
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQ, &queued) != 0) return 0;
  return static_cast<std::size_t>(queued);
#else
  (void)fd;
  return 0;
#endif
}

// Connects `count` owner peers, each sending HELLO, STATS and LIST in one write and
// waiting for the answers; every kPartialEvery-th then sends the start of a frame it never
// finishes. Returns when parker has read every byte of every peer (they are still open).
// They speak the current minor, as the client library does: credit granted to a 1.0 owner
// cannot be reclaimed, so parker turns newcomers away long before 500 of those are open.
std::vector<std::unique_ptr<RawOwner>> open_wave(const std::string& socket_path, std::size_t first,
                                                 std::size_t count, const std::vector<std::byte>& partial) {
  std::vector<std::unique_ptr<RawOwner>> peers;
  peers.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto peer = std::make_unique<RawOwner>(socket_path);
    std::vector<std::byte> burst;
    proto::encode(proto::Hello{proto::kVersionMajor, proto::kVersionMinor, "churn-" + std::to_string((first + i) % 8)},
                  burst);
    proto::encode(proto::StatsRequest{}, burst);
    proto::encode(proto::ListRequest{}, burst);
    peer->send_bytes(burst);
    peers.push_back(std::move(peer));
  }
  for (std::size_t i = 0; i < count; ++i) {
    auto& peer = *peers[i];
    bool answered = peer.wait_for([&] { return !peer.inbox().stats.empty() && !peer.inbox().lists.empty(); }, 20s);
    INFO("peer " << first + i << ": WELCOME " << peer.inbox().welcome.has_value() << ", STATS_REPLY "
                 << peer.inbox().stats.size() << ", LIST_REPLY " << peer.inbox().lists.size() << ", closed by parker "
                 << peer.inbox().eof << (peer.inbox().errors.empty() ? "" : ", ERROR: " + peer.inbox().errors[0].text));
    REQUIRE(answered);
    REQUIRE(peer.inbox().welcome.has_value());
    REQUIRE(peer.inbox().errors.empty());
    if ((first + i) % kPartialEvery == 0) peer.send_bytes(partial);
  }
  // Parker has taken in everything: what its sessions hold now is what they keep while idle.
  bool all_read = eventually(
      [&] {
        return std::all_of(peers.begin(), peers.end(), [](const auto& p) { return unread_by_peer(p->fd()) == 0; });
      },
      20s);
  REQUIRE(all_read);
  return peers;
}

}  // namespace

TEST_CASE("5,000 peers come and go: parker's fds and memory return to the baseline", "[daemon][churn]") {
#if !defined(__linux__)
  WARN("skipped: needs /proc and SIOCOUTQ");
  return;
#endif
  ParkerProcess parker;
  auto partial = unfinished_frame();

  // Warm-up: the first sessions allocate what parker keeps for good (pool table, stats
  // text buffers, the read scratch), so the baseline is taken after a few came and went.
  std::size_t start_fds = parker.fd_count();
  open_wave(parker.socket_path(), 0, 20, partial).clear();
  REQUIRE(parker.settle_fd_count(start_fds) == start_fds);
  std::size_t baseline_fds = parker.fd_count();
  std::size_t baseline_rss = rss_of(parker.pid());
  REQUIRE(baseline_rss > 0);

  std::size_t peak_rss = baseline_rss;
  std::size_t peak_fds = baseline_fds;
  for (std::size_t first = 0; first < kPeers; first += kWave) {
    auto wave = open_wave(parker.socket_path(), first, std::min(kWave, kPeers - first), partial);
    peak_rss = std::max(peak_rss, rss_of(parker.pid()));
    peak_fds = std::max(peak_fds, parker.fd_count());
    wave.clear();  // every peer closes
  }
  CHECK(peak_fds >= baseline_fds + kWave);  // the waves really were open at once

  // All gone: parker's sessions are closed when its fd count is back where it was.
  CHECK(parker.settle_fd_count(baseline_fds, 20s) == baseline_fds);
  CHECK(parker_metric(parker.socket_path(), "parker_owner_sessions") == 0);
  CHECK(parker_metric(parker.socket_path(), "parker_sessions_total") >=
        static_cast<long long>(kPeers + 20));

  // Memory. What parker legitimately keeps after the churn is a little heap that glibc does
  // not hand back (freed session objects scattered among live ones) and what the first wave
  // grew: at most about one wave's peak. One wave of 500 sessions costs ~1 MB of session
  // state plus 50 unfinished frames of 60 KiB (3 MB) while they are open. 16 MiB over the
  // baseline is a generous margin for that and for allocator noise, and still half of what
  // one wave alone used to leave behind (500 read buffers of 64 KiB = 32 MB).
  constexpr std::size_t kMargin = 16u << 20;
  std::size_t final_rss = 0;
  bool settled = eventually([&] { return (final_rss = rss_of(parker.pid())) <= baseline_rss + kMargin; }, 5s);
  INFO("parker RSS: baseline " << baseline_rss / 1024 << " KiB, peak " << peak_rss / 1024 << " KiB, after all closed "
                               << final_rss / 1024 << " KiB; fds: baseline " << baseline_fds << ", peak " << peak_fds);
#if defined(__SANITIZE_ADDRESS__)
  // ASan keeps freed memory in quarantine and shadow memory on top: RSS says nothing here.
  WARN("RSS bound not checked under sanitizers");
  (void)settled;
#else
  CHECK(settled);
#endif

  // And parker still parks and wakes for a new owner.
  {
    TcpListener listener;
    RawOwner owner(parker.socket_path());
    REQUIRE(owner.hello("after-churn"));
    auto pair = listener.pair();
    owner.park_one(pair.server.get(), 1, "still here");
    pair.server.reset();
    write_text(pair.client.get(), "?");
    REQUIRE(owner.wait_for_wakes(1));
    CHECK(owner.inbox().wakes[0].record.blob == "still here");
  }
  CHECK(parker.settle_fd_count(baseline_fds) == baseline_fds);
  CHECK(parker.terminate() == 0);
}
