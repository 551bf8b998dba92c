// parker daemon as an operator sees it: options, the socket file, stats and list, SIGHUP,
// and SIGTERM/SIGINT handing every parked connection back before exiting 0.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "support/daemon_harness.hpp"

using namespace parker;
using namespace parker::test;
using proto::WakeReason;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Parks `n` connections (ids 0..n-1) with 60 KB blobs each, so that handing them back is
// megabytes of WAKE frames; their clients' ends stay with the caller. Returns once parker
// has taken them all (a STATS round trip after the last PARK).
std::vector<TcpPair> park_big_blobs(RawOwner& owner, TcpListener& listener, std::size_t n) {
  std::vector<TcpPair> pairs;
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::size_t i = 0; i < n; ++i) {
    pairs.push_back(listener.pair());
    records.push_back({i, 0, 0, std::string(60000, 'q')});
    fds.push_back(pairs.back().server.get());
  }
  owner.park(records, fds);
  for (auto& p : pairs) p.server.reset();
  owner.stats();
  return pairs;
}

mode_t file_mode(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("parker --help, bad flags and a bad socket path give clear messages", "[daemon][lifecycle][options]") {
  auto parker = program_path("parker");
  auto help = run_command(parker + " --help");
  CHECK(help.code == 0);
  for (auto flag : {"--socket", "--socket-mode", "--allow-uid", "--allow-gid", "--max-parked", "--max-parked-per-owner",
                    "--max-blob", "--owner-grace", "--log-level", "--log-file"}) {
    CHECK(help.output.find(flag) != std::string::npos);
  }
  auto bad = run_command(parker + " --no-such-flag");
  CHECK(bad.code != 0);
  CHECK(bad.output.find("--no-such-flag") != std::string::npos);
  auto mode = run_command(parker + " --socket-mode 0999");
  CHECK(mode.code != 0);
  CHECK(mode.output.find("octal") != std::string::npos);
  auto level = run_command(parker + " --log-level loud");
  CHECK(level.code != 0);
  auto blob = run_command(parker + " --max-blob 99999999999");
  CHECK(blob.code != 0);

  TempDir dir;
  std::ofstream(dir.file("not-a-socket")) << "precious";
  auto not_socket = run_command(parker + " --socket " + dir.file("not-a-socket"));
  CHECK(not_socket.code == 1);
  CHECK(not_socket.output.find("cannot listen") != std::string::npos);
  CHECK(read_file(dir.file("not-a-socket")) == "precious");
}

TEST_CASE("a second parker on a live socket refuses to start", "[daemon][lifecycle]") {
  ParkerProcess first;
  auto second = run_command(program_path("parker") + " --socket " + first.socket_path());
  CHECK(second.code == 1);
  CHECK(second.output.find("cannot listen") != std::string::npos);
  RawOwner still(first.socket_path());
  CHECK(still.hello("web"));
}

TEST_CASE("the socket file gets a safe mode, 0600 by default", "[daemon][lifecycle][access]") {
  {
    ParkerProcess parker;
    CHECK(file_mode(parker.socket_path()) == 0600);
  }
  {
    ParkerProcess parker({"--socket-mode", "0660"});
    CHECK(file_mode(parker.socket_path()) == 0660);
  }
}

TEST_CASE("PARKER_SOCKET is the default socket path", "[daemon][lifecycle][options]") {
  TempDir dir;
  std::string path = dir.file("env.sock");
  ::setenv("PARKER_SOCKET", path.c_str(), 1);
  Process parker({program_path("parker")});
  ::unsetenv("PARKER_SOCKET");
  REQUIRE(parker.wait_for_output("listening on " + path));
  RawOwner owner(path);
  CHECK(owner.hello("env"));
  parker.signal(SIGTERM);
  REQUIRE(parker.wait());
}

TEST_CASE("stats and list describe what is parked", "[daemon][lifecycle][stats]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner web(parker.socket_path()), mail(parker.socket_path());
  REQUIRE(web.hello("web"));
  REQUIRE(mail.hello("mail"));
  std::vector<TcpPair> pairs;
  for (int i = 0; i < 3; ++i) pairs.push_back(listener.pair());
  web.park({{1, 0, 0, "aaaa"}, {2, 0, 0, "bb"}}, {pairs[0].server.get(), pairs[1].server.get()});
  mail.park_one(pairs[2].server.get(), 1, "c");
  web.stats();
  mail.stats();

  RawOwner observer(parker.socket_path());
  auto welcome = observer.hello("");
  REQUIRE(welcome);
  CHECK(welcome->credit == 0);
  auto stats = observer.stats();
  CHECK(metric(stats, "parker_parked_connections") == 3);
  CHECK(metric(stats, "parker_parks_total") == 3);
  CHECK(metric(stats, "parker_owner_sessions") == 2);
  CHECK(metric(stats, "parker_blob_bytes") == 7);
  for (auto series : {"parker_wakes_total{reason=\"readable\"}", "parker_wakes_total{reason=\"shutdown\"}",
                      "parker_closed_total{reason=\"owner_gone\"}", "parker_rejected_total{reason=\"not_socket\"}"}) {
    CHECK(metric(stats, series) == 0);
  }
  CHECK(stats.find("# TYPE parker_parked_connections gauge") != std::string::npos);
  CHECK(stats.find("# TYPE parker_wakes_total counter") != std::string::npos);

  auto list = observer.list();
  CHECK(list.find("pool=mail uid=" + std::to_string(::geteuid()) + " sessions=1 parked=1 held=0 blob_bytes=1\n") !=
        std::string::npos);
  CHECK(list.find("pool=web uid=" + std::to_string(::geteuid()) + " sessions=1 parked=2 held=0 blob_bytes=6\n") !=
        std::string::npos);
  CHECK(list.find("pool=mail") < list.find("pool=web"));
}

TEST_CASE("SIGHUP reopens the log file", "[daemon][lifecycle][logging]") {
  TempDir logs;
  std::string log = logs.file("parker.log");
  ParkerProcess parker({"--log-file", log});
  REQUIRE(eventually([&] { return read_file(log).find("listening on") != std::string::npos; }));
  std::filesystem::rename(log, log + ".1");  // what logrotate does
  parker.process().signal(SIGHUP);
  REQUIRE(eventually([&] { return read_file(log).find("log reopened") != std::string::npos; }));
  CHECK(read_file(log + ".1").find("SIGHUP") != std::string::npos);
  CHECK(parker.terminate() == 0);
  CHECK(read_file(log).find("stopped") != std::string::npos);
}

TEST_CASE("SIGTERM hands every parked connection back, closes the rest and exits 0", "[daemon][lifecycle][shutdown]") {
  auto parker = std::make_unique<ParkerProcess>();
  std::string socket_path = parker->socket_path();
  TcpListener listener;
  RawOwner owner(socket_path);
  REQUIRE(owner.hello("live"));
  constexpr std::size_t kParked = 600;  // several WAKE frames
  std::vector<TcpPair> pairs;
  std::vector<proto::ParkRecord> records;
  std::vector<int> fds;
  for (std::size_t i = 0; i < kParked; ++i) {
    pairs.push_back(listener.pair());
    records.push_back({i, 0, 0, "s" + std::to_string(i)});
    fds.push_back(pairs.back().server.get());
  }
  owner.park(records, fds);
  for (auto& p : pairs) p.server.reset();
  // A second pool whose owner is gone: its connections are closed at shutdown.
  auto orphan = listener.pair();
  {
    RawOwner gone(socket_path);
    REQUIRE(gone.hello("gone"));
    gone.park_one(orphan.server.get(), 1);
    gone.stats();
  }
  orphan.server.reset();
  owner.stats();

  parker->process().signal(SIGTERM);
  REQUIRE(owner.wait_for_wakes(kParked));
  std::set<std::uint64_t> ids;
  for (auto& w : owner.inbox().wakes) {
    ids.insert(w.record.id);
    CHECK(w.record.reason == WakeReason::shutdown);
    CHECK(w.record.blob == "s" + std::to_string(w.record.id));
  }
  CHECK(ids.size() == kParked);
  // Then a fatal shutting_down, and the end of the connection.
  REQUIRE(owner.wait_for_eof());
  REQUIRE_FALSE(owner.inbox().errors.empty());
  CHECK(owner.inbox().errors.back().code == proto::ErrorCode::shutting_down);
  CHECK(peer_closed(orphan.client.get()));
  auto status = parker->process().wait(10s);
  REQUIRE(status);
  CHECK(exit_code(*status) == 0);
  CHECK_FALSE(std::filesystem::exists(socket_path));
  // The handed-back connections still work.
  write_text(pairs[17].client.get(), "still here");
  CHECK(read_text(owner.wake_for(17)->fd.get()) == "still here");
}

TEST_CASE("SIGINT stops parker the same way", "[daemon][lifecycle][shutdown]") {
  ParkerProcess parker;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("p"));
  parker.process().signal(SIGINT);
  REQUIRE(owner.wait_for_eof());
  CHECK(owner.inbox().errors.back().code == proto::ErrorCode::shutting_down);
  auto status = parker.process().wait(10s);
  REQUIRE(status);
  CHECK(exit_code(*status) == 0);
}

TEST_CASE("SIGTERM with an owner that does not read: bounded wait, then exit 0", "[daemon][lifecycle][shutdown]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("stuck"));
  std::vector<TcpPair> pairs = park_big_blobs(owner, listener, 100);
  auto start = std::chrono::steady_clock::now();
  int code = parker.terminate(20s);
  CHECK(code == 0);
  CHECK(std::chrono::steady_clock::now() - start < 15s);
  // Whatever the owner did not take was closed by parker. The only other place a client's
  // fd can be is our own FrameReader: fds of the frame parker was sending when it gave up
  // arrived with its first byte, and an incomplete frame never hands them out.
  owner.wait_for_eof(2s);
  std::size_t handed = owner.inbox().wakes.size();
  std::size_t still_open = 0;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (owner.wake_for(i) == nullptr && !peer_closed(pairs[i].client.get(), 300ms)) ++still_open;
  }
  CHECK(still_open == owner.reader().queued_fds());
  INFO("handed back before the flush time ran out: " << handed);
  CHECK(handed < pairs.size());
}

// A busy owner reads its last wakes slowly, but reads: parker must wait for it rather than
// close those clients when the flush time (2 s) is up — it only gives up on an owner that
// takes nothing for that long. 100 blobs of 60 KB are about 6 MB; read a socket-buffer's
// worth (64 KiB) every 40 ms, they take about 4 s, never 2 s without progress.
TEST_CASE("SIGTERM with an owner that reads slowly: every connection handed back, then exit 0",
          "[daemon][lifecycle][shutdown]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("slow"));
  constexpr std::size_t kParked = 100;
  std::vector<TcpPair> pairs = park_big_blobs(owner, listener, kParked);
  parker.process().signal(SIGTERM);
  const auto started = std::chrono::steady_clock::now();
  std::size_t reads = 0;
  while (!owner.inbox().eof && std::chrono::steady_clock::now() - started < 60s) {
    if (owner.poll_once(1s)) ++reads;
    std::this_thread::sleep_for(40ms);  // the slow reader itself, not a wait for a condition
  }
  INFO(reads << " reads, " << owner.inbox().wakes.size() << " wakes, in "
             << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
             << " ms");
  CHECK(owner.inbox().wakes.size() == kParked);
  REQUIRE_FALSE(owner.inbox().errors.empty());
  CHECK(owner.inbox().errors.back().code == proto::ErrorCode::shutting_down);
  auto status = parker.process().wait(10s);
  REQUIRE(status);
  CHECK(exit_code(*status) == 0);
  write_text(pairs[42].client.get(), "handed back");
  REQUIRE(owner.wake_for(42) != nullptr);
  CHECK(read_text(owner.wake_for(42)->fd.get()) == "handed back");
}
