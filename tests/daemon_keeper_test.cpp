// parker with --keeper: a held wake's unsent bytes (WAKE_UNSENT, write-through) survive a
// SIGKILL of parker through parker-keeper (KEEP_UPDATE woken_unsent, HANDOVER kind 4), and
// parkers and keepers of different keeper levels still meet: neither is sent what it cannot
// read. Real parker and parker-keeper processes, real TCP loopback sockets, raw protocol peers.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>

#include "support/daemon_harness.hpp"

using namespace parker;
using namespace parker::test;
using proto::WakeReason;

namespace {

// Writes all of `bytes` to a socket within `timeout`, EAGAIN and short writes included.
bool write_all(int fd, std::string_view bytes, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    (void)::poll(&p, 1, static_cast<int>(left.count()));
  }
  return true;
}

// WRITEs 64 KiB payloads, each of its own letter, to parked `id` until parker wakes it
// write_blocked (loopback buffers are a few MiB: bounded at 400 writes). Returns every byte
// parker accepted for it, in order: what is in the client's socket, then the wake's unsent.
std::string fill_until_blocked(RawOwner& owner, std::uint64_t id) {
  std::string accepted;
  std::size_t writes = 0;
  while (owner.inbox().wakes.empty() && writes < 400) {
    std::string payload(65536, static_cast<char>('a' + writes % 26));
    owner.send(proto::Write{{id}, payload});
    ++writes;
    REQUIRE(owner.wait_for([&] { return owner.inbox().write_results.size() == writes; }));
    if (owner.inbox().write_results.back().written == 1) accepted += payload;
  }
  return accepted;
}

// A raw keeper peer: says what a parker would, reads what the keeper answers.
class KeeperPeer {
 public:
  explicit KeeperPeer(const std::string& path) {
    auto c = connect_unix(path);
    if (!c.ok()) throw std::runtime_error("connect to the keeper: " + describe(c.error));
    fd_ = std::move(c.value);
  }
  void send(const proto::Message& m, std::span<const int> fds = {}) {
    std::vector<std::byte> bytes = proto::encode(m);
    if (send_all_with_fds(fd_.get(), bytes, fds).failed()) throw std::runtime_error("send to the keeper");
  }
  // The next frame within `timeout`, or nothing.
  std::optional<proto::Frame> next(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto frame = reader_.next()) return frame;
      if (reader_.error() != proto::DecodeError::none) return std::nullopt;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{fd_.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      Error e = reader_.read_from(fd_.get());
      if (e.failed() && !e.is(EAGAIN)) return std::nullopt;
    }
  }
  std::optional<proto::KeepControl> next_control() {
    auto frame = next();
    if (!frame) return std::nullopt;
    auto* c = std::get_if<proto::KeepControl>(&frame->message);
    if (c == nullptr) return std::nullopt;
    return *c;
  }
  // HELLO at `level`: the keeper's level (nullopt when it sent none) and its state count.
  std::pair<std::optional<std::uint64_t>, std::uint64_t> hello(std::uint64_t level) {
    send(proto::KeepControl{proto::KeepCommand::hello, level});
    auto c = next_control();
    REQUIRE(c.has_value());
    std::optional<std::uint64_t> keeper_level;
    if (c->command == proto::KeepCommand::level) {
      keeper_level = c->count;
      c = next_control();
      REQUIRE(c.has_value());
    }
    REQUIRE(c->command == proto::KeepCommand::state);
    return {keeper_level, c->count};
  }
  // RESTORE: the records and fds the keeper lends, up to HANDOVER_END.
  std::vector<proto::HandoverRecord> restore(std::vector<UniqueFd>& fds) {
    send(proto::KeepControl{proto::KeepCommand::restore, 0});
    std::vector<proto::HandoverRecord> records;
    for (int frames = 0; frames < 100; ++frames) {
      auto frame = next();
      REQUIRE(frame.has_value());
      if (auto* h = std::get_if<proto::Handover>(&frame->message)) {
        for (std::size_t i = 0; i < h->records.size(); ++i) {
          records.push_back(h->records[i]);
          fds.push_back(std::move(frame->fds[i]));
        }
        continue;
      }
      auto* end = std::get_if<proto::HandoverEnd>(&frame->message);
      REQUIRE(end != nullptr);
      CHECK(end->records == records.size());
      return records;
    }
    FAIL("no HANDOVER_END from the keeper");
    return records;
  }

 private:
  UniqueFd fd_;
  proto::FrameReader reader_;
};

// A keeper from before keeper levels, played by the test: it answers hello with state alone
// and records what parker tells it. Its decoder is today's, so it sees whatever parker sends.
class OldKeeper {
 public:
  explicit OldKeeper(const std::string& path) {
    auto l = listen_unix(path);
    if (!l.ok()) throw std::runtime_error("listen for the old keeper: " + describe(l.error));
    listener_ = std::move(l.value);
    thread_ = std::thread([this] { serve(); });
  }
  ~OldKeeper() {
    stop_ = true;
    thread_.join();
  }
  OldKeeper(const OldKeeper&) = delete;
  OldKeeper& operator=(const OldKeeper&) = delete;

  std::vector<proto::KeepUpdateRecord> updates() {
    std::lock_guard lock(mutex_);
    return updates_;
  }
  std::vector<proto::HandoverRecord> kept() {
    std::lock_guard lock(mutex_);
    return kept_;
  }
  std::size_t malformed() {
    std::lock_guard lock(mutex_);
    return malformed_;
  }

 private:
  void serve() {
    UniqueFd peer;
    proto::FrameReader reader;
    // Bounded: the test stops it, or a minute passes.
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      pollfd p[2] = {{listener_.get(), POLLIN, 0}, {peer ? peer.get() : -1, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      if ((p[0].revents & POLLIN) != 0 && !peer) {
        auto a = accept_connection(listener_.get());
        if (a.ok()) peer = std::move(a.value);
        continue;
      }
      if (!peer || p[1].revents == 0) continue;
      Error e = reader.read_from(peer.get());
      if (e.failed() && !e.is(EAGAIN)) {
        peer.reset();
        reader = proto::FrameReader{};
        continue;
      }
      while (auto frame = reader.next()) {
        std::lock_guard lock(mutex_);
        if (auto* c = std::get_if<proto::KeepControl>(&frame->message); c && c->command == proto::KeepCommand::hello) {
          std::vector<std::byte> state = proto::encode(proto::KeepControl{proto::KeepCommand::state, 0});
          (void)send_all_with_fds(peer.get(), state, {});
        } else if (auto* h = std::get_if<proto::Handover>(&frame->message)) {
          kept_.insert(kept_.end(), h->records.begin(), h->records.end());
        } else if (auto* u = std::get_if<proto::KeepUpdate>(&frame->message)) {
          updates_.insert(updates_.end(), u->records.begin(), u->records.end());
        }
      }
      if (reader.error() != proto::DecodeError::none) {
        std::lock_guard lock(mutex_);
        ++malformed_;
        peer.reset();
        reader = proto::FrameReader{};
      }
    }
  }

  UniqueFd listener_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<proto::KeepUpdateRecord> updates_;
  std::vector<proto::HandoverRecord> kept_;
  std::size_t malformed_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a held wake's unsent bytes survive a SIGKILL of parker and reach the next owner as WAKE_UNSENT",
          "[daemon][keeper][write]") {
  TempDir dir;
  const std::string keeper_socket = dir.file("parker.keeper");
  Process keeper({program_path("parker-keeper"), "--socket", keeper_socket});
  REQUIRE(keeper.wait_for_output("listening on", 10s));
  const std::size_t keeper_baseline = open_fd_count(keeper.pid());
  const std::vector<std::string> args{"--keeper", "--keeper-socket", keeper_socket};

  auto first = std::make_unique<ParkerProcess>(args);
  const std::size_t baseline = first->fd_count();
  CHECK(first->process().output().find("will not survive") == std::string::npos);  // a keeper of level 1
  TcpListener listener;
  auto pair = listener.pair();
  const ino_t inode = inode_of(pair.server.get());
  std::string accepted;
  std::string unsent;
  {
    RawOwner owner(first->socket_path());
    REQUIRE(owner.hello("web", 1, 1));
    owner.park_one(pair.server.get(), 5, "session-5");
    REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
    pair.server.reset();
    accepted = fill_until_blocked(owner, 5);
    REQUIRE(owner.wait_for_wakes(1));
    const auto& wake = owner.inbox().wakes[0];
    REQUIRE(wake.record.reason == WakeReason::write_blocked);
    REQUIRE_FALSE(wake.record.unsent.empty());
    unsent = wake.record.unsent;
    // No ACK: parker dies with the wake unacknowledged. The owner never adopted it either
    // (its copy closes with this scope), so the keeper's copy is what is left.
    first->process().signal(SIGKILL);
    REQUIRE(first->process().wait(10s).has_value());
  }
  first.reset();

  ParkerProcess second(args);
  REQUIRE(second.process().wait_for_output("restored from the keeper", 10s));
  CHECK(keeper.wait_for_output("1 held, 1 with unsent bytes", 10s));
  RawOwner owner(second.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  REQUIRE(owner.wait_for_wakes(1));
  auto& wake = owner.inbox().wakes[0];
  CHECK(wake.record.id == 5);
  CHECK(wake.record.reason == WakeReason::write_blocked);
  CHECK(wake.record.blob == "session-5");
  CHECK(wake.record.unsent == unsent);
  CHECK(inode_of(wake.fd.get()) == inode);  // the very connection

  // The owner writes the unsent bytes first, then its own: the client reads its whole stream.
  std::string in_socket = drain(pair.client.get());
  CHECK(in_socket + wake.record.unsent == accepted);
  const std::string next = "+next message\r\n";
  std::string rest;
  std::thread reader([&] { rest = read_exactly(pair.client.get(), unsent.size() + next.size(), 10s); });
  bool written = write_all(wake.fd.get(), wake.record.unsent) && write_all(wake.fd.get(), next);
  reader.join();
  REQUIRE(written);
  CHECK(rest.size() == unsent.size() + next.size());
  CHECK(in_socket + rest == accepted + next);

  // Acknowledged: parker and the keeper let go of their copies.
  owner.send(proto::Ack{1});
  wake.fd.reset();
  CHECK(second.settle_fd_count(baseline + 1) == baseline + 1);
  std::size_t keeper_fds = 0;
  CHECK(eventually([&] { return (keeper_fds = open_fd_count(keeper.pid())) == keeper_baseline + 1; }));
  INFO("keeper fds " << keeper_fds << ", baseline " << keeper_baseline);
  CHECK(second.terminate() == 0);  // a clean stop: the keeper is told bye and exits too
  auto keeper_status = keeper.wait(10s);
  REQUIRE(keeper_status.has_value());
  CHECK(exit_code(*keeper_status) == 0);
}

// A park and a WRITE that does not fit, read in one batch: the keeper's HANDOVER record of
// the park, still in parker's batch, becomes a held wake with the bytes (kind 4).
TEST_CASE("a connection parked and woken write_blocked in one batch keeps its unsent bytes through a crash",
          "[daemon][keeper][write]") {
  TempDir dir;
  const std::string keeper_socket = dir.file("parker.keeper");
  Process keeper({program_path("parker-keeper"), "--socket", keeper_socket});
  REQUIRE(keeper.wait_for_output("listening on", 10s));
  const std::vector<std::string> args{"--keeper", "--keeper-socket", keeper_socket};
  auto first = std::make_unique<ParkerProcess>(args);
  TcpListener listener;
  auto pair = listener.pair();
  // The server's side full before the park (bounded: loopback buffers are a few MiB).
  std::string in_socket_before;
  {
    std::string chunk(65536, 'z');
    for (int i = 0; i < 400; ++i) {
      ssize_t n = ::send(pair.server.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      in_socket_before.append(chunk, 0, static_cast<std::size_t>(n));
    }
  }
  const std::string payload = "$7\r\nmessage\r\n";
  {
    RawOwner owner(first->socket_path());
    REQUIRE(owner.hello("web", 1, 1));
    REQUIRE(owner.wait_for([&] { return owner.inbox().credit > 0; }));
    std::vector<std::byte> frames = proto::encode(proto::Park{{{5, 0, 0, "s"}}});
    proto::encode(proto::Write{{5}, payload}, frames);
    owner.send_bytes(frames, std::vector<int>{pair.server.get()});
    REQUIRE(owner.wait_for_wakes(1));
    CHECK(owner.inbox().wakes[0].record.reason == WakeReason::write_blocked);
    REQUIRE(owner.inbox().wakes[0].record.unsent == payload);
    pair.server.reset();
    first->process().signal(SIGKILL);
    REQUIRE(first->process().wait(10s).has_value());
  }
  first.reset();

  ParkerProcess second(args);
  REQUIRE(second.process().wait_for_output("restored from the keeper", 10s));
  RawOwner owner(second.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  REQUIRE(owner.wait_for_wakes(1));
  auto& wake = owner.inbox().wakes[0];
  CHECK(wake.record.reason == WakeReason::write_blocked);
  CHECK(wake.record.unsent == payload);
  std::string rest;
  std::thread reader([&] { rest = read_exactly(pair.client.get(), in_socket_before.size() + payload.size(), 10s); });
  bool written = write_all(wake.fd.get(), wake.record.unsent);
  reader.join();
  REQUIRE(written);
  CHECK(rest.size() == in_socket_before.size() + payload.size());
  CHECK((rest == in_socket_before + payload));  // (not printed: megabytes)
  owner.send(proto::Ack{1});
}

TEST_CASE("parker with a keeper before levels tells it woken without the bytes and says so once at start",
          "[daemon][keeper][write][compat]") {
  TempDir dir;
  const std::string keeper_socket = dir.file("old.keeper");
  OldKeeper old(keeper_socket);
  ParkerProcess parker({"--keeper", "--keeper-socket", keeper_socket});
  CHECK(parker.process().wait_for_output("will not survive a crash", 5s));

  TcpListener listener;
  auto pair = listener.pair();
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  owner.park_one(pair.server.get(), 5, "s");
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
  pair.server.reset();
  std::string accepted = fill_until_blocked(owner, 5);
  REQUIRE(owner.wait_for_wakes(1));
  auto& wake = owner.inbox().wakes[0];
  CHECK(wake.record.reason == WakeReason::write_blocked);  // the owner's WAKE_UNSENT is as ever
  CHECK(drain(pair.client.get()) + wake.record.unsent == accepted);
  owner.send(proto::Ack{1});

  auto has = [&](proto::KeepOp op) {
    for (const auto& u : old.updates()) {
      if (u.op == op && u.id == 5) return true;
    }
    return false;
  };
  REQUIRE(eventually([&] { return has(proto::KeepOp::forget_woken); }));
  CHECK(has(proto::KeepOp::woken));
  CHECK_FALSE(has(proto::KeepOp::woken_unsent));
  for (const auto& r : old.kept()) CHECK(r.unsent.empty());
  CHECK(old.malformed() == 0);
  // Said once, at start, not per wake.
  const std::string& log = parker.process().output();
  auto first = log.find("will not survive a crash");
  CHECK(log.find("will not survive a crash", first + 1) == std::string::npos);
}

TEST_CASE("the keeper sends its level only to a parker that says one and held bytes only to level 1",
          "[keeper][compat]") {
  TempDir dir;
  const std::string keeper_socket = dir.file("parker.keeper");
  Process keeper({program_path("parker-keeper"), "--socket", keeper_socket});
  REQUIRE(keeper.wait_for_output("listening on", 10s));
  const std::size_t keeper_baseline = open_fd_count(keeper.pid());

  KeeperPeer parker_now(keeper_socket);
  auto [level, held] = parker_now.hello(proto::kKeeperLevel);
  CHECK(level == proto::kKeeperLevel);
  CHECK(held == 0);
  auto pair = make_socket_pair();
  REQUIRE(pair.ok());
  const ino_t inode = inode_of(pair.value.first.get());
  parker_now.send(proto::Handover{{{proto::HandoverKind::parked, "web", ::geteuid(), 9, 0, 0, "blob", ""}}},
                  std::vector<int>{pair.value.first.get()});
  pair.value.first.reset();
  parker_now.send(proto::KeepUpdate{{{proto::KeepOp::woken_unsent, "web", 9, "rest of a message"}}});
  CHECK(parker_now.hello(proto::kKeeperLevel).second == 1);  // in order: the update is in

  {
    // A parker before levels says 0: state alone, and a restore without kind 4.
    KeeperPeer parker_before(keeper_socket);
    auto [old_level, old_held] = parker_before.hello(0);
    CHECK_FALSE(old_level.has_value());
    CHECK(old_held == 1);
    std::vector<UniqueFd> fds;
    auto records = parker_before.restore(fds);
    REQUIRE(records.size() == 1);
    CHECK(records[0].kind == proto::HandoverKind::held);
    CHECK(records[0].flags == static_cast<std::uint8_t>(WakeReason::write_blocked));
    CHECK(records[0].unsent.empty());
    CHECK(inode_of(fds[0].get()) == inode);
    CHECK(keeper.wait_for_output("restored without its 17 unsent bytes", 5s));
  }
  {
    // A parker that says a level above ours is answered with ours.
    KeeperPeer parker_later(keeper_socket);
    CHECK(parker_later.hello(proto::kKeeperLevel + 5).first == proto::kKeeperLevel);
  }
  std::vector<UniqueFd> fds;
  auto records = parker_now.restore(fds);
  REQUIRE(records.size() == 1);
  CHECK(records[0].kind == proto::HandoverKind::held);
  CHECK(records[0].id == 9);
  CHECK(records[0].blob == "blob");
  CHECK(records[0].unsent == "rest of a message");
  REQUIRE(fds.size() == 1);
  CHECK(inode_of(fds[0].get()) == inode);
  fds.clear();

  // The owner has it: the keeper's copy closes.
  parker_now.send(proto::KeepUpdate{{{proto::KeepOp::forget_woken, "web", 9}}});
  CHECK(parker_now.hello(proto::kKeeperLevel).second == 0);
  CHECK(eventually([&] { return open_fd_count(keeper.pid()) == keeper_baseline + 1; }));
  parker_now.send(proto::KeepControl{proto::KeepCommand::bye, 0});
  auto status = keeper.wait(10s);
  REQUIRE(status.has_value());
  CHECK(exit_code(*status) == 0);
}
