// parker daemon, protocol 1.1: write-through (WRITE -> WRITE_RESULT, WAKE_UNSENT) and
// keep-alive rules (KEEPALIVE_RULES, park flags' rule set). Real parker process, real TCP
// loopback sockets, a raw 1.1 owner.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "support/daemon_harness.hpp"

using namespace parker;
using namespace parker::test;
using proto::RejectReason;
using proto::WakeReason;

namespace {

const std::string kPing = "*1\r\n$4\r\nPING\r\n";
const std::string kPong = "+PONG\r\n";

std::uint8_t with_set(std::uint8_t set, std::uint8_t flags = 0) {
  return static_cast<std::uint8_t>(flags | (set << proto::kKeepaliveSetShift));
}

}  // namespace

TEST_CASE("write-through fans one payload out to parked connections without waking them", "[daemon][write]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  auto a = listener.pair();
  auto b = listener.pair();
  owner.park({{1, 0, 0, "a"}, {2, 0, 0, "b"}}, {a.server.get(), b.server.get()});
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 2; }));
  a.server.reset();
  b.server.reset();
  REQUIRE(parker.settle_fd_count(baseline + 3) == baseline + 3);

  owner.send(proto::Write{{1, 2, 99}, "+message one\r\n"});
  owner.send(proto::Write{{2, 1}, "+message two\r\n"});
  REQUIRE(owner.wait_for([&] { return owner.inbox().write_results.size() == 2; }));
  const auto& first = owner.inbox().write_results[0];
  CHECK(first.write == 1);
  CHECK(first.written == 2);
  CHECK(first.not_parked == std::vector<std::uint64_t>{99});  // the owner delivers those itself
  CHECK(owner.inbox().write_results[1].write == 2);
  CHECK(owner.inbox().write_results[1].not_parked.empty());

  CHECK(read_exactly(a.client.get(), 28) == "+message one\r\n+message two\r\n");
  CHECK(read_exactly(b.client.get(), 28) == "+message one\r\n+message two\r\n");
  CHECK(owner.inbox().wakes.empty());
  CHECK(parker_metric(parker.socket_path(), "parker_writes_total") == 4);
  CHECK(parker_metric(parker.socket_path(), "parker_write_bytes_total") == 56);
  CHECK(parker_metric(parker.socket_path(), "parker_writes_not_parked_total") == 1);

  // Still parked: the client speaking wakes it as ever.
  write_text(a.client.get(), "GET k\r\n");
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().wakes[0].record.reason == WakeReason::readable);
  CHECK(owner.inbox().wakes[0].record.unsent.empty());
  CHECK(read_text(owner.inbox().wakes[0].fd.get()) == "GET k\r\n");
}

TEST_CASE("a client that does not read is woken with the unsent remainder and loses no byte", "[daemon][write]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  auto pair = listener.pair();
  owner.park_one(pair.server.get(), 5, "s");
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
  pair.server.reset();

  // 64 KiB payloads, each of its own letter, until the socket is full (loopback buffers are a
  // few MiB: bounded at 400 writes, 25 MiB).
  std::string accepted;
  std::size_t writes = 0;
  while (owner.inbox().wakes.empty() && writes < 400) {
    std::string payload(65536, static_cast<char>('a' + writes % 26));
    owner.send(proto::Write{{5}, payload});
    ++writes;
    REQUIRE(owner.wait_for([&] { return owner.inbox().write_results.size() == writes; }));
    if (owner.inbox().write_results.back().written == 1) accepted += payload;
  }
  REQUIRE(owner.wait_for_wakes(1));
  auto& wake = owner.inbox().wakes[0];
  CHECK(wake.record.reason == WakeReason::write_blocked);
  CHECK(wake.record.blob == "s");
  REQUIRE_FALSE(wake.record.unsent.empty());

  // A write after the wake is not parker's to make: reported, nothing written.
  owner.send(proto::Write{{5}, "late"});
  REQUIRE(owner.wait_for([&] { return owner.inbox().write_results.size() == writes + 1; }));
  CHECK(owner.inbox().write_results.back().not_parked == std::vector<std::uint64_t>{5});

  // What the client reads, then the remainder the owner writes: every accepted byte, in order.
  std::string in_socket = drain(pair.client.get());
  CHECK(in_socket.size() + wake.record.unsent.size() == accepted.size());
  CHECK(in_socket + wake.record.unsent == accepted);
  CHECK(parker_metric(parker.socket_path(), "parker_wakes_total{reason=\"write_blocked\"}") == 1);
  owner.send(proto::Ack{1});
  wake.fd.reset();
  REQUIRE(parker.settle_fd_count(baseline + 1) == baseline + 1);
}

TEST_CASE("a parked subscriber that hangs up is reported as before write-through", "[daemon][write][hangup]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  auto pair = listener.pair();
  owner.park_one(pair.server.get(), 8, "s");
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
  pair.server.reset();
  pair.client.reset();
  REQUIRE(owner.wait_for_closed(1));
  CHECK(owner.inbox().closed[0].id == 8);
  owner.send(proto::Write{{8}, "+gone\r\n"});
  REQUIRE(owner.wait_for([&] { return owner.inbox().write_results.size() == 1; }));
  CHECK(owner.inbox().write_results[0].not_parked == std::vector<std::uint64_t>{8});
}

TEST_CASE("keep-alive rules answer PING without a wake", "[daemon][keepalive]") {
  ParkerProcess parker;
  std::size_t baseline = parker.fd_count();
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  owner.send(proto::KeepaliveRules{1, {{kPing, kPong}, {"PING\r\n", kPong}}});
  auto pair = listener.pair();
  owner.park_one(pair.server.get(), 3, "s", 0, with_set(1));
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
  REQUIRE(owner.inbox().rejected.empty());
  pair.server.reset();
  REQUIRE(parker.settle_fd_count(baseline + 2) == baseline + 2);

  for (int i = 0; i < 3; ++i) {
    write_text(pair.client.get(), i == 1 ? "PING\r\n" : kPing);
    CHECK(read_exactly(pair.client.get(), kPong.size()) == kPong);
  }
  CHECK(parker_metric(parker.socket_path(), "parker_keepalive_replies_total") == 3);
  CHECK(owner.inbox().wakes.empty());

  // Anything else wakes as before, with the bytes untouched.
  write_text(pair.client.get(), "*1\r\n$4\r\nQUIT\r\n");
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(read_text(owner.inbox().wakes[0].fd.get()) == "*1\r\n$4\r\nQUIT\r\n");
}

TEST_CASE("a PING pipelined with another command wakes the connection with both", "[daemon][keepalive]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  owner.send(proto::KeepaliveRules{2, {{kPing, kPong}}});
  auto pair = listener.pair();
  owner.park_one(pair.server.get(), 4, "s", 0, with_set(2));
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
  pair.server.reset();
  const std::string both = kPing + "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  write_text(pair.client.get(), both);
  REQUIRE(owner.wait_for_wakes(1));
  CHECK(owner.inbox().wakes[0].record.reason == WakeReason::readable);
  CHECK(read_exactly(owner.inbox().wakes[0].fd.get(), both.size()) == both);
  CHECK(parker_metric(parker.socket_path(), "parker_keepalive_replies_total") == 0);
}

TEST_CASE("a partial keep-alive request waits for its rest or wakes after a bounded time", "[daemon][keepalive]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  owner.send(proto::KeepaliveRules{1, {{kPing, kPong}}});
  auto a = listener.pair();
  auto b = listener.pair();
  owner.park({{1, 0, with_set(1), "a"}, {2, 0, with_set(1), "b"}}, {a.server.get(), b.server.get()});
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 2; }));
  a.server.reset();
  b.server.reset();

  // The rest comes: answered, no wake. (The partial wait is far longer than two sends.)
  write_text(a.client.get(), kPing.substr(0, 5));
  REQUIRE(eventually([&] { return parker_metric(parker.socket_path(), "parker_keepalive_partial_total") == 1; }));
  write_text(a.client.get(), kPing.substr(5));
  CHECK(read_exactly(a.client.get(), kPong.size()) == kPong);

  // The rest never comes: woken readable, the partial bytes left for the owner.
  write_text(b.client.get(), kPing.substr(0, 5));
  REQUIRE(owner.wait_for_wakes(1, 5s));
  CHECK(owner.inbox().wakes[0].record.id == 2);
  CHECK(owner.inbox().wakes[0].record.reason == WakeReason::readable);
  CHECK(read_text(owner.inbox().wakes[0].fd.get()) == kPing.substr(0, 5));
  CHECK(owner.wake_for(1) == nullptr);
}

TEST_CASE("a park naming an undeclared rule set comes back no_rules", "[daemon][keepalive]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, 1));
  auto pair = listener.pair();
  ino_t inode = inode_of(pair.server.get());
  owner.park_one(pair.server.get(), 9, "blob", 0, with_set(7));
  pair.server.reset();
  REQUIRE(owner.wait_for_rejected(1));
  CHECK(owner.inbox().rejected[0].record.reason == RejectReason::no_rules);
  CHECK(owner.inbox().rejected[0].record.blob == "blob");
  CHECK(inode_of(owner.inbox().rejected[0].fd.get()) == inode);
}

TEST_CASE("WRITE on a 1.0 session is a bad frame and parked connections stay parked", "[daemon][write][errors]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner keeper(parker.socket_path());
  REQUIRE(keeper.hello("web", 1, 1));
  auto pair = listener.pair();
  keeper.park_one(pair.server.get(), 1, "s");
  REQUIRE(keeper.wait_for([&] { return keeper.inbox().parked == 1; }));
  pair.server.reset();

  RawOwner old(parker.socket_path());
  REQUIRE(old.hello("web"));  // 1.0
  old.send(proto::Write{{1}, "+x\r\n"});
  REQUIRE(old.wait_for_eof());
  REQUIRE_FALSE(old.inbox().errors.empty());
  CHECK(old.inbox().errors.back().code == proto::ErrorCode::bad_frame);
  CHECK(read_text(pair.client.get(), 200ms).empty());  // nothing was written
  CHECK(parker_metric(parker.socket_path(), "parker_parked_connections") == 1);
}

TEST_CASE("a malformed WRITE gets bad_frame and changes nothing else", "[daemon][write][errors]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner keeper(parker.socket_path());
  REQUIRE(keeper.hello("web", 1, 1));
  auto pair = listener.pair();
  keeper.park_one(pair.server.get(), 1, "s");
  REQUIRE(keeper.wait_for([&] { return keeper.inbox().parked == 1; }));
  pair.server.reset();

  RawOwner bad(parker.socket_path());
  REQUIRE(bad.hello("web", 1, 1));
  // WRITE with one id and a payload length beyond the body.
  std::vector<std::byte> frame = proto::encode(proto::Write{{1}, "+x\r\n"});
  frame[8 + 4 + 8] = std::byte{0xff};
  bad.send_bytes(frame);
  REQUIRE(bad.wait_for_eof());
  REQUIRE_FALSE(bad.inbox().errors.empty());
  CHECK(bad.inbox().errors.back().code == proto::ErrorCode::bad_frame);
  CHECK(read_text(pair.client.get(), 200ms).empty());
  CHECK(parker_metric(parker.socket_path(), "parker_parked_connections") == 1);
  keeper.send(proto::Write{{1}, "+still\r\n"});
  CHECK(read_exactly(pair.client.get(), 8) == "+still\r\n");
}

TEST_CASE("1.3: a stopping parker answers each WRITE it read and names the last one in its fatal ERROR",
          "[daemon][write][shutdown]") {
  ParkerProcess parker;
  TcpListener listener;
  RawOwner owner(parker.socket_path());
  REQUIRE(owner.hello("web", 1, proto::kMinorWritesHandled));
  auto a = listener.pair();
  owner.park({{1, 0, 0, "a"}}, {a.server.get()});
  REQUIRE(owner.wait_for([&] { return owner.inbox().parked == 1; }));
  a.server.reset();

  // WRITEs in parker's socket when the signal comes, and more after it, as an owner that has
  // not heard yet keeps sending them. Whatever parker read it answered before its ERROR, and
  // it read nothing after: the ERROR's count is exactly the results that came before it.
  auto payload = [](int i) {
    std::string n = std::to_string(10000 + i);
    return "+m" + n + "\r\n";
  };
  int sent = 0;
  for (; sent < 200; ++sent) owner.send(proto::Write{{1}, payload(sent)});
  parker.process().signal(SIGTERM);
  for (int round = 0; round < 2000 && !owner.inbox().eof; ++round) {
    owner.send(proto::Write{{1}, payload(sent++)});
    owner.poll_once(1ms);  // reads what parker sent meanwhile
  }
  REQUIRE(owner.wait_for_eof());
  INFO(sent << " WRITEs sent; " << owner.inbox().write_results.size() << " results, " << owner.inbox().wakes.size()
            << " wakes");
  REQUIRE_FALSE(owner.inbox().errors.empty());
  const proto::ErrorMessage& end = owner.inbox().errors.back();
  CHECK(end.code == proto::ErrorCode::shutting_down);
  CHECK(end.fatal);
  const auto& results = owner.inbox().write_results;
  CHECK(end.id == results.size());
  std::uint64_t written = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    CHECK(results[i].write == i + 1);
    written += results[i].written;
  }
  INFO(sent << " WRITEs sent, " << results.size() << " handled, " << written << " written before the shutdown wake");
  // What parker wrote is exactly the first `written` payloads, in order; the rest the owner delivers.
  std::string expected;
  for (std::uint64_t i = 0; i < written; ++i) expected += payload(static_cast<int>(i));
  CHECK(read_exactly(a.client.get(), expected.size() + 1, 500ms) == expected);  // and nothing after
}
