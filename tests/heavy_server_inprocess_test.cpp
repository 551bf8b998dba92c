// heavy::Server in-process, on a loop this test steps itself, with real TCP clients: the API the
// parking integration will use (detach a connection to fd + blob, adopt it back; hand the
// listener over), and graceful shutdown. Every test ends with the loop closed cleanly and no
// descriptor leaked.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <uv.h>

#include <thread>

#include "heavy/connection.hpp"
#include "heavy/server.hpp"
#include "heavy/session_blob.hpp"
#include "support/fd_count.hpp"
#include "support/heavy_support.hpp"

using namespace heavy;
using namespace heavy::test;
using namespace std::chrono_literals;

namespace {

struct CountingSink final : PubSubSink {
  std::vector<std::string> messages;
  void deliver(std::string_view, std::string_view message) override { messages.emplace_back(message); }
  void deliver_pattern(std::string_view, std::string_view, std::string_view message) override {
    messages.emplace_back(message);
  }
};

// libuv opens a process-wide pipe (for signals) on the first uv_loop_init and keeps it: open it
// before counting descriptors.
std::size_t fd_count_after_libuv_init() {
  static const bool warmed = [] {
    uv_loop_t l;
    uv_loop_init(&l);
    uv_loop_close(&l);
    return true;
  }();
  (void)warmed;
  return parker::test::open_fd_count();
}

class LoopFixture {
 public:
  LoopFixture() : fds_before_(fd_count_after_libuv_init()) { REQUIRE(uv_loop_init(&loop_) == 0); }
  ~LoopFixture() {
    // Even when a test failed half-way: stop every server, run the loop dry, close it.
    for (auto& s : servers_) stop(*s);
    servers_.clear();
    for (int i = 0; i < 1000 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) std::this_thread::sleep_for(1ms);
    CHECK(uv_loop_close(&loop_) == 0);
    CHECK(parker::test::open_fd_count() == fds_before_);
  }

  [[nodiscard]] ServerOptions options() const {
    ServerOptions o;
    o.port = 0;
    o.session_bytes = 64 * 1024;
    o.drain_timeout_ms = 2000;
    return o;
  }

  // A server on this loop, with small sessions; the fixture stops it at the end.
  Server& make_server() {
    servers_.push_back(std::make_unique<Server>(&loop_, options()));
    return *servers_.back();
  }

  void step() { uv_run(&loop_, UV_RUN_NOWAIT); }

  // Sends `request` and steps the loop until `expected_size` reply bytes arrived.
  std::string exchange(int fd, const std::string& request, std::size_t expected_size) {
    if (!request.empty()) send_all(fd, request);
    return collect(fd, expected_size);
  }
  std::string collect(int fd, std::size_t expected_size) {
    std::string got;
    for (int i = 0; i < 2000 && got.size() < expected_size; ++i) {
      step();
      got += recv_some(fd, 1ms);
    }
    return got;
  }
  bool peer_closed(int fd) {
    for (int i = 0; i < 2000; ++i) {
      step();
      bool eof = false;
      (void)recv_some(fd, 1ms, &eof);
      if (eof) return true;
    }
    return false;
  }
  void stop(Server& server) {
    server.shutdown();
    for (int i = 0; i < 1000 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) std::this_thread::sleep_for(1ms);
  }

  uv_loop_t* loop() { return &loop_; }

 private:
  std::size_t fds_before_;
  uv_loop_t loop_{};
  std::vector<std::unique_ptr<Server>> servers_;
};

std::uint16_t port_of(const Server& server) {
  const std::string addr = server.listening_address();
  return static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1)));
}

std::string ok() { return "+OK\r\n"; }

}  // namespace

TEST_CASE_METHOD(LoopFixture, "a connection detaches to an fd and a blob and is adopted back with its session",
                 "[heavy][server]") {
  Server& server = make_server();
  REQUIRE(server.listen().empty());
  auto client = connect_tcp(port_of(server));
  CHECK(exchange(client.get(), "CLIENT SETNAME alice\r\nSELECT 3\r\nSET k v\r\n", 15) == ok() + ok() + ok());
  CHECK(exchange(client.get(), "CLIENT ID\r\n", 4) == ":1\r\n");
  REQUIRE(server.connection_count() == 1);

  DetachResult d = server.detach_connection(1);
  REQUIRE(d.detached);
  CHECK(d.error.empty());
  CHECK(d.detached->fd.valid());
  CHECK(d.detached->client_id == 1);
  CHECK(server.connection_count() == 0);
  CHECK(server.stats().active_connections == 0);

  // The client speaks while its connection is off the loop: nobody answers yet.
  send_all(client.get(), "GET k\r\n");
  CHECK(collect(client.get(), 1).empty());

  AdoptResult a = server.adopt_connection(d.detached->fd, d.detached->blob);
  REQUIRE(a.connection != nullptr);
  CHECK(a.error.empty());
  CHECK(server.stats().active_connections == 1);
  // The waiting request is read and answered from the restored session (db 3).
  CHECK(collect(client.get(), 7) == "$1\r\nv\r\n");
  CHECK(exchange(client.get(), "CLIENT GETNAME\r\nCLIENT ID\r\n", 15) == "$5\r\nalice\r\n:1\r\n");
}

TEST_CASE_METHOD(LoopFixture, "a detached subscriber's channels move to a stand-in and back", "[heavy][server]") {
  Server& server = make_server();
  REQUIRE(server.listen().empty());
  auto subscriber = connect_tcp(port_of(server));
  auto publisher = connect_tcp(port_of(server));
  const std::string subscribed = "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n";
  CHECK(exchange(subscriber.get(), "SUBSCRIBE news\r\n", subscribed.size()) == subscribed);
  CHECK(exchange(publisher.get(), "PUBLISH news first\r\n", 4) == ":1\r\n");
  const std::string first = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nfirst\r\n";
  CHECK(collect(subscriber.get(), first.size()) == first);
  CHECK(server.stats().subscriber_connections == 1);

  CountingSink stand_in;
  DetachResult d = server.detach_connection(1, &stand_in);
  REQUIRE(d.detached);
  CHECK(server.stats().subscriber_connections == 0);
  // While parked, the stand-in is the receiver: PUBLISH still counts it.
  CHECK(exchange(publisher.get(), "PUBLISH news parked\r\n", 4) == ":1\r\n");
  CHECK(stand_in.messages == std::vector<std::string>{"parked"});

  AdoptResult a = server.adopt_connection(d.detached->fd, d.detached->blob, &stand_in);
  REQUIRE(a.connection != nullptr);
  CHECK(server.pubsub().subscriber_count("news") == 1);
  CHECK(server.stats().subscriber_connections == 1);
  CHECK(exchange(publisher.get(), "PUBLISH news back\r\n", 4) == ":1\r\n");
  const std::string back = "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$4\r\nback\r\n";
  CHECK(collect(subscriber.get(), back.size()) == back);
  CHECK(stand_in.messages.size() == 1);
}

// Issue 9: a connection holding a partial request used to be unparkable (500 such clients
// pinned 500 sessions). Its bytes now travel in the blob and the request completes after.
TEST_CASE_METHOD(LoopFixture, "a partial request is detached with its bytes and completes after adoption",
                 "[heavy][server]") {
  Server& server = make_server();
  REQUIRE(server.listen().empty());
  auto client = connect_tcp(port_of(server));
  CHECK(exchange(client.get(), "SET k v\r\n", 5) == "+OK\r\n");
  send_all(client.get(), "*2\r\n$3\r\nGET");  // a request in progress
  for (int i = 0; i < 50; ++i) step();
  CHECK(server.detach_connection(99).error == "no such client");
  CHECK(server.detach_connection(1, nullptr, 8).error == "session too large");
  DetachResult d = server.detach_connection(1);
  REQUIRE(d.detached);
  CHECK(server.connection_count() == 0);
  auto decoded = decode_session(d.detached->blob);
  REQUIRE(decoded.session);
  CHECK(decoded.session->unparsed_input == "*2\r\n$3\r\nGET");
  AdoptResult back = server.adopt_connection(d.detached->fd, d.detached->blob);
  REQUIRE(back.connection != nullptr);
  CHECK(exchange(client.get(), "\r\n$1\r\nk\r\n", 7) == "$1\r\nv\r\n");
  stop(server);
  CHECK(closed_by_peer(client.get()));
}

// A graceful restart hands over a connection that has whole requests and replies buffered; the
// process that adopts it sends the replies and runs the requests first.
TEST_CASE_METHOD(LoopFixture, "a blob's unsent output and whole requests are served on adoption", "[heavy][server]") {
  Server& server = make_server();
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  Session s;
  s.id = 7;
  s.unsent_output = "+FIRST\r\n";
  s.unparsed_input = "PING\r\nECHO hi\r\n";
  auto blob = encode_session(s);
  REQUIRE(blob);
  AdoptResult r = server.adopt_connection(ours, *blob);
  REQUIRE(r.connection != nullptr);
  CHECK(collect(theirs.get(), 21) == "+FIRST\r\n+PONG\r\n$2\r\nhi\r\n");
  stop(server);
}

TEST_CASE_METHOD(LoopFixture, "adopting with a bad blob leaves the socket with the caller, open", "[heavy][server]") {
  Server& server = make_server();
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  UniqueFd mine(pair[0]), theirs(pair[1]);
  const std::byte garbage[] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
  const int raw = theirs.get();
  AdoptResult a = server.adopt_connection(theirs, garbage);
  CHECK(a.connection == nullptr);
  CHECK_FALSE(a.error.empty());
  CHECK(theirs.get() == raw);  // not taken
  CHECK(server.connection_count() == 0);

  // A good blob on a Unix socket works too: any stream socket can carry a session.
  Session s;
  s.id = 77;
  s.name = "unix";
  auto blob = encode_session(s);
  REQUIRE(blob);
  AdoptResult b = server.adopt_connection(theirs, *blob);
  REQUIRE(b.connection != nullptr);
  CHECK_FALSE(theirs.valid());  // taken
  CHECK(exchange(mine.get(), "CLIENT GETNAME\r\nCLIENT ID\r\n", 15) == "$4\r\nunix\r\n:77\r\n");
}

TEST_CASE_METHOD(LoopFixture, "the listening socket is handed from one server to another", "[heavy][server]") {
  Server& first = make_server();
  Server& second = make_server();
  REQUIRE(first.listen().empty());
  const std::uint16_t port = port_of(first);
  UniqueFd listener = first.detach_listener();
  REQUIRE(listener.valid());
  CHECK(first.listening_address().empty());
  // A client that connects during the hand-over waits in the backlog; nobody refuses it.
  auto early = connect_tcp(port);
  REQUIRE(second.adopt_listener(std::move(listener)).empty());
  CHECK(port_of(second) == port);
  CHECK(exchange(early.get(), "PING\r\n", 7) == "+PONG\r\n");
  CHECK(second.stats().connections_received == 1);
  CHECK(first.stats().connections_received == 0);

  UniqueFd not_listening(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK_FALSE(first.adopt_listener(std::move(not_listening)).empty());
}

TEST_CASE_METHOD(LoopFixture, "shutdown finishes the request in progress, answers it, then closes", "[heavy][server]") {
  Server& server = make_server();
  REQUIRE(server.listen().empty());
  const std::uint16_t port = port_of(server);
  auto busy = connect_tcp(port);
  auto idle = connect_tcp(port);
  CHECK(exchange(idle.get(), "PING\r\n", 7) == "+PONG\r\n");
  send_all(busy.get(), "*3\r\n$3\r\nSET\r\n$1\r\nk");
  for (int i = 0; i < 50; ++i) step();
  bool stopped = false;
  server.set_on_stopped([&] { stopped = true; });
  server.shutdown();
  CHECK(peer_closed(idle.get()));  // nothing in progress: closed at once
  CHECK_FALSE(stopped);
  CHECK(exchange(busy.get(), "\r\n$1\r\nv\r\n", 5) == ok());
  CHECK(peer_closed(busy.get()));
  CHECK(stopped);
  CHECK(server.keyspace().db(0).find("k", 0)->data == "v");
  // No new connections once stopping.
  CHECK_THROWS(connect_tcp(port));
}

TEST_CASE_METHOD(LoopFixture, "quiet connections are visited oldest first, and may be detached on the way",
                 "[heavy][server]") {
  Server& server = make_server();
  REQUIRE(server.listen().empty());
  auto a = connect_tcp(port_of(server));
  auto b = connect_tcp(port_of(server));
  CHECK(exchange(a.get(), "CLIENT ID\r\n", 4) == ":1\r\n");
  CHECK(exchange(b.get(), "CLIENT ID\r\n", 4) == ":2\r\n");
  auto order = [&] {
    std::vector<std::uint64_t> ids;
    server.for_each_quiet_since(UINT64_MAX, [&](Connection& c) { ids.push_back(c.id()); });
    return ids;
  };
  CHECK(order() == std::vector<std::uint64_t>{1, 2});
  CHECK(exchange(a.get(), "PING\r\n", 7) == "+PONG\r\n");
  CHECK(order() == std::vector<std::uint64_t>{2, 1});
  std::vector<std::uint64_t> none;
  server.for_each_quiet_since(0, [&](Connection& c) { none.push_back(c.id()); });
  CHECK(none.empty());

  std::vector<UniqueFd> parked;
  server.for_each_quiet_since(UINT64_MAX, [&](Connection& c) {
    if (c.idle()) parked.push_back(std::move(server.detach_connection(c.id()).detached->fd));
  });
  CHECK(parked.size() == 2);
  CHECK(server.connection_count() == 0);
  CHECK(order().empty());
}
