// parker daemon, protocol 1.4: the socket_checked park flag (0x04). An owner that has checked
// an fd is a socket says so, and parker skips its own fstat. What each test pins down:
//   - a real socket parked with the flag is parked and woken as ever;
//   - parker really trusts the flag: a pipe parked with it is parked (without it: not_socket),
//     and a wrong claim only hurts the owner — the pipe comes back readable, a regular file
//     is refused watch_failed, both with their fd and blob;
//   - the flag is 1.4: on an older session it is malformed (every fd of the frame back, then a
//     fatal bad_frame, nothing parked), and the same PARK without it works there.
// Real parker process, real fds, a raw protocol owner; fd counts of both processes checked.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>

#include "support/daemon_harness.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using proto::RejectReason;
using proto::WakeReason;

namespace {

constexpr std::uint16_t kMinor13 = proto::kMinorWritesHandled;
constexpr std::uint16_t kMinor14 = proto::kMinorSocketChecked;

struct Pipe {
  UniqueFd read_end, write_end;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
};

bool is_fifo(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

// Waits until parker has confirmed (PARKED) the first `n` parks of the session.
bool confirmed(RawOwner& owner, std::uint64_t n) {
  return owner.wait_for([&] { return owner.inbox().parked >= n; });
}

}  // namespace

TEST_CASE("1.4: a TCP socket parked as socket_checked is parked and woken when its client writes",
          "[daemon][socket_checked]") {
  ParkerProcess parker;
  const std::size_t parker_baseline = parker.fd_count();
  const std::size_t test_baseline = open_fd_count();
  {
    TcpListener listener;
    RawOwner owner(parker.socket_path());
    auto welcome = owner.hello("web", proto::kVersionMajor, kMinor14);
    REQUIRE(welcome);
    REQUIRE(welcome->minor == kMinor14);
    const std::size_t with_session = parker.fd_count();

    auto pair = listener.pair();
    const ino_t inode = inode_of(pair.server.get());
    owner.park_one(pair.server.get(), 41, "tcp-state", 0, proto::kSocketChecked | proto::kWakeOnHangup);
    REQUIRE(confirmed(owner, 1));
    CHECK(owner.inbox().rejected.empty());
    CHECK(owner.inbox().errors.empty());
    pair.server.reset();  // parker holds the only server-side fd now
    CHECK(parker.settle_fd_count(with_session + 1) == with_session + 1);
    CHECK(metric(owner.stats(), "parker_parked_connections") == 1);

    // Parker does not keep the claim: the record shows the flags it acts on, nothing else.
    owner.send(proto::InventoryRequest{});
    REQUIRE(owner.wait_for([&] { return owner.inbox().inventory_done; }));
    REQUIRE(owner.inbox().inventory.size() == 1);
    CHECK(owner.inbox().inventory[0].id == 41);
    CHECK(owner.inbox().inventory[0].flags == proto::kWakeOnHangup);

    write_text(pair.client.get(), "PING\r\n");
    REQUIRE(owner.wait_for_wakes(1));
    auto& wake = owner.inbox().wakes[0];
    CHECK(wake.record.id == 41);
    CHECK(wake.record.reason == WakeReason::readable);
    CHECK(wake.record.blob == "tcp-state");
    CHECK(inode_of(wake.fd.get()) == inode);
    CHECK(read_text(wake.fd.get()) == "PING\r\n");
    owner.send(proto::Ack{1});  // parker lets go of its copy of the woken fd
    CHECK(parker.settle_fd_count(with_session) == with_session);
  }
  CHECK(parker.settle_fd_count(parker_baseline) == parker_baseline);
  CHECK(open_fd_count() == test_baseline);
}

TEST_CASE("1.4: a pipe parked as socket_checked is parked and handed back readable at its first event",
          "[daemon][socket_checked]") {
  ParkerProcess parker;
  const std::size_t parker_baseline = parker.fd_count();
  const std::size_t test_baseline = open_fd_count();
  {
    RawOwner owner(parker.socket_path());
    REQUIRE(owner.hello("web", proto::kVersionMajor, kMinor14));
    const std::size_t with_session = parker.fd_count();

    Pipe pipe;
    const ino_t inode = inode_of(pipe.read_end.get());
    // Without wake_on_hangup: had parker read the pipe's end as a hang-up, it would close it.
    owner.park_one(pipe.read_end.get(), 7, "pipe-state", 0, proto::kSocketChecked);
    REQUIRE(confirmed(owner, 1));
    // Parked, not refused: parker took the owner's word (it would have said not_socket).
    REQUIRE(owner.inbox().rejected.empty());
    pipe.read_end.reset();
    CHECK(parker.settle_fd_count(with_session + 1) == with_session + 1);
    CHECK(metric(owner.stats(), "parker_parked_connections") == 1);

    std::string expected;
    SECTION("a byte written into the pipe wakes it") {
      REQUIRE(::write(pipe.write_end.get(), "x", 1) == 1);
      expected = "x";
    }
    SECTION("the write end closed wakes it too, and parker does not close it") {
      pipe.write_end.reset();
    }
    REQUIRE(owner.wait_for_wakes(1));
    auto& wake = owner.inbox().wakes[0];
    CHECK(wake.record.id == 7);
    CHECK(wake.record.reason == WakeReason::readable);
    CHECK(wake.record.blob == "pipe-state");
    REQUIRE(wake.fd.valid());
    CHECK(is_fifo(wake.fd.get()));
    CHECK(inode_of(wake.fd.get()) == inode);
    char buffer[8];
    CHECK(::read(wake.fd.get(), buffer, sizeof buffer) == static_cast<ssize_t>(expected.size()));
    CHECK(owner.inbox().closed.empty());
    owner.send(proto::Ack{1});
    CHECK(parker.settle_fd_count(with_session) == with_session);
    CHECK(metric(owner.stats(), "parker_parked_connections") == 0);
  }
  CHECK(parker.settle_fd_count(parker_baseline) == parker_baseline);
  CHECK(open_fd_count() == test_baseline);
}

TEST_CASE("1.4: a regular file claimed a socket is refused watch_failed and an unclaimed pipe not_socket",
          "[daemon][socket_checked][reject]") {
  ParkerProcess parker;
  const std::size_t parker_baseline = parker.fd_count();
  const std::size_t test_baseline = open_fd_count();
  {
    TcpListener listener;
    RawOwner owner(parker.socket_path());
    REQUIRE(owner.hello("web", proto::kVersionMajor, kMinor14));
    const std::size_t with_session = parker.fd_count();

    UniqueFd file(::open(parker.dir().file("plain-file").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    REQUIRE(file.valid());
    Pipe pipe;
    auto pair = listener.pair();
    // One frame: the claim is judged per record, so the real socket in it is parked.
    owner.park({{1, 0, proto::kSocketChecked, "file-state"}, {2, 0, 0, "pipe-state"},
                {3, 0, proto::kSocketChecked, "tcp-state"}},
               {file.get(), pipe.read_end.get(), pair.server.get()});
    REQUIRE(owner.wait_for_rejected(2));
    REQUIRE(confirmed(owner, 3));
    std::map<std::uint64_t, ReceivedReject*> back;
    for (auto& r : owner.inbox().rejected) back[r.record.id] = &r;
    REQUIRE(back.size() == 2);
    REQUIRE(back.count(1) == 1);
    REQUIRE(back.count(2) == 1);
    // The file: parker skipped its check as told, and the kernel would not watch it.
    CHECK(back[1]->record.reason == RejectReason::watch_failed);
    CHECK(back[1]->record.blob == "file-state");
    REQUIRE(back[1]->fd.valid());
    CHECK(inode_of(back[1]->fd.get()) == inode_of(file.get()));
    // The pipe without the claim: parker's own check is still there.
    CHECK(back[2]->record.reason == RejectReason::not_socket);
    CHECK(back[2]->record.blob == "pipe-state");
    REQUIRE(back[2]->fd.valid());
    CHECK(inode_of(back[2]->fd.get()) == inode_of(pipe.read_end.get()));
    CHECK(owner.inbox().errors.empty());
    owner.inbox().rejected.clear();  // closes the returned copies
    pair.server.reset();

    auto stats = owner.stats();
    CHECK(metric(stats, "parker_parked_connections") == 1);
    CHECK(metric(stats, "parker_rejected_total{reason=\"watch_failed\"}") == 1);
    CHECK(metric(stats, "parker_rejected_total{reason=\"not_socket\"}") == 1);
    CHECK(parker.settle_fd_count(with_session + 1) == with_session + 1);
  }
  CHECK(parker.settle_fd_count(parker_baseline) == parker_baseline);
  CHECK(open_fd_count() == test_baseline);
}

TEST_CASE("before 1.4 socket_checked is malformed: the frame's fds come back then bad_frame",
          "[daemon][socket_checked][faults]") {
  const std::uint16_t minor = GENERATE(std::uint16_t{0}, kMinor13);
  INFO("protocol 1." << minor);
  ParkerProcess parker;
  const std::size_t parker_baseline = parker.fd_count();
  const std::size_t test_baseline = open_fd_count();
  {
    TcpListener listener;
    std::vector<TcpPair> pairs;
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) {
      pairs.push_back(listener.pair());
      fds.push_back(pairs.back().server.get());
    }
    {
      RawOwner owner(parker.socket_path());
      auto welcome = owner.hello("web", proto::kVersionMajor, minor);
      REQUIRE(welcome);
      REQUIRE(welcome->minor == minor);
      // Only the middle record claims: every record of the frame comes back, the one before it too.
      owner.park({{1, 0, 0, "one"}, {2, 0, proto::kSocketChecked, "two"}, {3, 0, 0, "three"}}, fds);
      REQUIRE(owner.wait_for_eof());
      REQUIRE(owner.inbox().rejected.size() == 3);
      for (auto& r : owner.inbox().rejected) {
        CHECK(r.record.reason == RejectReason::no_credit);
        REQUIRE(r.record.id >= 1);
        REQUIRE(r.record.id <= 3);
        CHECK(r.record.blob == (r.record.id == 1 ? "one" : r.record.id == 2 ? "two" : "three"));
        REQUIRE(r.fd.valid());
        CHECK(inode_of(r.fd.get()) == inode_of(fds[r.record.id - 1]));
      }
      REQUIRE(owner.inbox().errors.size() == 1);
      CHECK(owner.inbox().errors[0].code == proto::ErrorCode::bad_frame);
      CHECK(owner.inbox().errors[0].fatal);
      CHECK(owner.inbox().wakes.empty());
      CHECK(owner.inbox().parked == 0);
    }
    // Nothing of it was parked, and parker holds nothing of it.
    auto stats = parker_stats_text(parker.socket_path());
    CHECK(metric(stats, "parker_parked_connections") == 0);
    CHECK(metric(stats, "parker_parks_total") == 0);
    CHECK(parker.settle_fd_count(parker_baseline) == parker_baseline);

    // The same PARK without the claim is fine on the same version.
    RawOwner again(parker.socket_path());
    REQUIRE(again.hello("web", proto::kVersionMajor, minor));
    again.park({{1, 0, 0, "one"}, {2, 0, 0, "two"}, {3, 0, 0, "three"}}, fds);
    if (minor >= proto::kMinorExactlyOnce) REQUIRE(confirmed(again, 3));
    REQUIRE(eventually([&] { return metric(again.stats(), "parker_parked_connections") == 3; }));
    CHECK(again.inbox().rejected.empty());
    CHECK(again.inbox().errors.empty());
    for (auto& p : pairs) p.server.reset();
    write_text(pairs[1].client.get(), "hi");
    REQUIRE(again.wait_for_wakes(1));
    CHECK(again.inbox().wakes[0].record.id == 2);
    CHECK(again.inbox().wakes[0].record.blob == "two");
    CHECK(read_text(again.inbox().wakes[0].fd.get()) == "hi");
    if (minor >= proto::kMinorExactlyOnce) again.send(proto::Ack{1});
    again.send(proto::Drop{{1, 3}});
    REQUIRE(again.wait_for_closed(2));
  }
  CHECK(parker.settle_fd_count(parker_baseline) == parker_baseline);
  CHECK(open_fd_count() == test_baseline);
}

TEST_CASE("1.4: a pipe claimed a socket does not survive a take-over, and its owner is told by CLOSED",
          "[daemon][socket_checked][takeover]") {
  // The successor checks every handed-over park again (the predecessor trusted the claim and
  // kept no record of it). A park it refuses is closed: its owner must hear so, or it would
  // count the connection parked for ever. The real socket beside it is taken over as ever.
  ParkerProcess old_parker;
  const std::string socket = old_parker.socket_path();
  const std::size_t test_baseline = open_fd_count();
  {
    TcpListener listener;
    TcpPair tcp = listener.pair();
    Pipe pipe;
    {
      RawOwner owner(socket);
      REQUIRE(owner.hello("web", proto::kVersionMajor, kMinor14));
      owner.park_one(tcp.server.get(), 1, "tcp", 0, proto::kSocketChecked);
      owner.park_one(pipe.read_end.get(), 2, "pipe", 0, proto::kSocketChecked);
      REQUIRE(confirmed(owner, 2));
      REQUIRE(owner.inbox().rejected.empty());
      tcp.server.reset();
      pipe.read_end.reset();
    }
    Process successor({program_path("parker"), "--socket", socket, "--take-over"});
    REQUIRE(successor.wait_for_output("listening on", 20s));
    auto status = old_parker.process().wait(20s);
    REQUIRE(status.has_value());
    CHECK(exit_code(*status) == 0);

    RawOwner again(socket);
    auto welcome = again.hello("web", proto::kVersionMajor, kMinor14);
    REQUIRE(welcome.has_value());
    CHECK(welcome->parked_in_pool == 1);
    REQUIRE(again.wait_for_closed(1));
    CHECK(again.inbox().closed[0].id == 2);
    CHECK(again.inbox().closed[0].reason == proto::CloseReason::error);
    pollfd p{pipe.write_end.get(), POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 0) == 1);
    CHECK((p.revents & POLLERR) != 0);  // no reader left anywhere: closed, not leaked
    write_text(tcp.client.get(), "ping");
    REQUIRE(again.wait_for_wakes(1));
    CHECK(again.inbox().wakes[0].record.id == 1);
    CHECK(read_text(again.inbox().wakes[0].fd.get()) == "ping");
    successor.signal(SIGTERM);
    REQUIRE(successor.wait(20s).has_value());
  }
  CHECK(open_fd_count() == test_baseline);
}
