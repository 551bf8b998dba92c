// The C API (parker/parker.h) against the real parker daemon, driven by a plain poll() loop
// as a C program would: park and wake (the same socket comes back), recall, refusals (fd and
// blob returned), parks never sent, and a parker killed under the client.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "parker/parker.h"
#include "support/client_daemon.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;
using namespace std::chrono_literals;

namespace {

// What the callbacks saw. Every fd handed to us is kept in a UniqueFd: closed at the end.
struct Seen {
  int connected = 0;
  std::vector<int> disconnect_errors;
  struct Back {
    UniqueFd fd;
    std::uint64_t id;
    std::string blob;
    int reason;
  };
  std::vector<Back> woken, rejected;
  std::vector<std::uint64_t> parked;
};

parker_callbacks callbacks_for(Seen& seen) {
  parker_callbacks c{};
  c.user = &seen;
  c.on_connected = [](void* u) { ++static_cast<Seen*>(u)->connected; };
  c.on_disconnected = [](void* u, int error, uint32_t) { static_cast<Seen*>(u)->disconnect_errors.push_back(error); };
  c.on_wake = [](void* u, int fd, uint64_t id, const void* blob, size_t n, int reason) {
    static_cast<Seen*>(u)->woken.push_back({UniqueFd(fd), id, std::string(static_cast<const char*>(blob), n), reason});
  };
  c.on_rejected = [](void* u, int fd, uint64_t id, const void* blob, size_t n, int reason) {
    static_cast<Seen*>(u)->rejected.push_back({UniqueFd(fd), id, std::string(static_cast<const char*>(blob), n), reason});
  };
  c.on_parked = [](void* u, uint64_t id) { static_cast<Seen*>(u)->parked.push_back(id); };
  return c;
}

// A C-style event loop: flush, poll the client's fd with its timer, dispatch; until
// `done` holds or `timeout` passes.
bool run_until(parker_client* client, const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    parker_flush(client);
    pollfd p{parker_fd(client), POLLIN, 0};
    if (parker_wants_write(client) != 0) p.events |= POLLOUT;
    int wait = parker_timer_ms(client);
    if (wait < 0 || wait > 50) wait = 50;
    int n = ::poll(&p, p.fd >= 0 ? 1 : 0, wait);
    if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) parker_on_readable(client);
    if (n > 0 && (p.revents & POLLOUT) != 0) parker_on_writable(client);
    if (parker_timer_ms(client) == 0) parker_on_timer(client);
  }
  return true;
}

ino_t inode(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_ino;
}

struct Client {
  parker_client* c = nullptr;
  explicit Client(Seen& seen) {
    parker_callbacks cb = callbacks_for(seen);
    REQUIRE(parker_client_new(&cb, &c) == 0);
  }
  ~Client() { parker_client_free(c); }
};

// Starts the session for pool "c-pool" and waits until parker has welcomed it.
void connect_and_wait(Client& client, const ParkerDaemon& parker) {
  REQUIRE(parker_connect(client.c, parker.socket_path().c_str(), "c-pool") == 0);
  REQUIRE(run_until(client.c, [&] { return parker_connected(client.c) == 1; }));
}

// A parker running in a fresh directory and a C client with a session to it.
struct Connected {
  TempDir dir;
  ParkerDaemon parker{dir.file("parker.sock")};
  Seen seen;
  Client client{seen};
  Connected() {
    parker.start();
    connect_and_wait(client, parker);
  }
};

// Parks the server side of `connection` (taken on success) and waits for parker's confirmation.
void park_confirmed(Client& client, Seen& seen, TcpConnection& connection, std::uint64_t id, const std::string& blob) {
  std::size_t before = seen.parked.size();
  int rc = parker_park(client.c, connection.server_side.get(), id, blob.data(), blob.size(), nullptr);
  INFO(parker_strerror(rc));
  REQUIRE(rc == 0);
  (void)connection.server_side.release();  // the library's now
  REQUIRE(run_until(client.c, [&] { return seen.parked.size() > before; }));
}

}  // namespace

TEST_CASE("C API: a parked connection comes back, the same socket, when its client writes", "[capi]") {
  Connected session;
  auto& [dir, parker, seen, client] = session;
  CHECK(seen.connected == 1);
  CHECK(parker_credit(client.c) > 0);

  TcpLoopback tcp;
  TcpConnection connection = tcp.connect();
  ino_t parked_inode = inode(connection.server_side.get());
  park_confirmed(client, seen, connection, 42, "session blob");
  CHECK(parker_unconfirmed_parks(client.c) == 0);

  write_text(connection.client_side.get(), "ping");
  REQUIRE(run_until(client.c, [&] { return !seen.woken.empty(); }));
  REQUIRE(seen.woken.size() == 1);
  CHECK(seen.woken[0].id == 42);
  CHECK(seen.woken[0].blob == "session blob");
  CHECK(seen.woken[0].reason == PARKER_WAKE_READABLE);
  CHECK(inode(seen.woken[0].fd.get()) == parked_inode);
  CHECK(read_some(seen.woken[0].fd.get()) == "ping");  // parker never read the client's bytes
  parker_close(client.c);
  CHECK(parker.stop() == 0);
}

TEST_CASE("C API: recall hands a parked connection back", "[capi]") {
  Connected session;
  auto& [dir, parker, seen, client] = session;
  TcpLoopback tcp;
  TcpConnection connection = tcp.connect();
  park_confirmed(client, seen, connection, 7, "");
  REQUIRE(parker_recall(client.c, 7) == 0);
  REQUIRE(run_until(client.c, [&] { return !seen.woken.empty(); }));
  CHECK(seen.woken[0].id == 7);
  CHECK(seen.woken[0].reason == PARKER_WAKE_RECALLED);
  CHECK(seen.woken[0].blob.empty());
  CHECK(parker_recall(client.c, 0) == 0);  // unknown id: parker answers with an ERROR, not fatal
  parker_close(client.c);
  CHECK(parker.stop() == 0);
}

TEST_CASE("C API: refused and unsent parks come back with their fd and blob", "[capi]") {
  TempDir dir;
  ParkerDaemon parker(dir.file("parker.sock"));
  Seen seen;
  Client client(seen);

  SECTION("park without a session fails at once and leaves the fd to the caller") {
    TcpLoopback tcp;
    TcpConnection connection = tcp.connect();
    CHECK(parker_park(client.c, connection.server_side.get(), 1, "x", 1, nullptr) == -ENOTCONN);
    CHECK(::fcntl(connection.server_side.get(), F_GETFD) >= 0);  // still open, still ours
    CHECK(std::string(parker_strerror(-ENOTCONN)).find("ENOTCONN") != std::string::npos);
  }
  SECTION("a non-socket is refused by the library; a duplicate id by parker") {
    parker.start();
    connect_and_wait(client, parker);
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    CHECK(parker_park(client.c, read_end.get(), 1, nullptr, 0, nullptr) == -ENOTSOCK);
    CHECK(parker_park(client.c, -1, 1, nullptr, 0, nullptr) == -EBADF);

    TcpLoopback tcp;
    TcpConnection first = tcp.connect(), second = tcp.connect();
    park_confirmed(client, seen, first, 5, "first");
    ino_t second_inode = inode(second.server_side.get());
    REQUIRE(parker_park(client.c, second.server_side.release(), 5, "second", 6, nullptr) == 0);
    REQUIRE(run_until(client.c, [&] { return !seen.rejected.empty(); }));
    CHECK(seen.rejected[0].id == 5);
    CHECK(seen.rejected[0].reason == PARKER_REJECT_DUPLICATE_ID);
    CHECK(seen.rejected[0].blob == "second");
    CHECK(inode(seen.rejected[0].fd.get()) == second_inode);
    parker_close(client.c);
    CHECK(parker.stop() == 0);
  }
  SECTION("a park queued but not sent comes back at close") {
    parker.start();
    connect_and_wait(client, parker);
    TcpLoopback tcp;
    TcpConnection connection = tcp.connect();
    ino_t queued_inode = inode(connection.server_side.get());
    REQUIRE(parker_park(client.c, connection.server_side.release(), 9, "queued", 6, nullptr) == 0);
    parker_close(client.c);  // before any flush
    REQUIRE(seen.rejected.size() == 1);
    CHECK(seen.rejected[0].reason == PARKER_REJECT_NOT_SENT);
    CHECK(seen.rejected[0].blob == "queued");
    CHECK(inode(seen.rejected[0].fd.get()) == queued_inode);
    CHECK(parker.stop() == 0);
  }
}

TEST_CASE("C API: a lost parker is reported, parks fail cleanly, and the client reconnects", "[capi]") {
  Connected session;
  auto& [dir, parker, seen, client] = session;
  TcpLoopback tcp;
  TcpConnection parked = tcp.connect();
  park_confirmed(client, seen, parked, 1, "gone with parker");

  parker.kill();
  REQUIRE(run_until(client.c, [&] { return !seen.disconnect_errors.empty(); }));
  CHECK(seen.disconnect_errors[0] < 0);
  CHECK(parker_connected(client.c) == 0);
  CHECK(parker_fd(client.c) == -1);
  CHECK(parker_timer_ms(client.c) >= 0);  // a reconnect is scheduled
  // The connection parker held died with it: its client sees the end.
  CHECK(read_some(parked.client_side.get()).empty());

  TcpConnection later = tcp.connect();
  CHECK(parker_park(client.c, later.server_side.get(), 2, nullptr, 0, nullptr) == -ENOTCONN);
  CHECK(::fcntl(later.server_side.get(), F_GETFD) >= 0);

  parker.start();
  REQUIRE(run_until(client.c, [&] { return parker_connected(client.c) == 1; }));
  CHECK(seen.connected == 2);
  park_confirmed(client, seen, later, 2, "");
  parker_close(client.c);
  CHECK(parker.stop() == 0);
}

TEST_CASE("C API: version and argument checks", "[capi]") {
  CHECK(std::string(parker_version()) == PARKER_VERSION);
  CHECK(parker_client_new(nullptr, nullptr) == -EINVAL);
  parker_client* c = nullptr;
  REQUIRE(parker_client_new(nullptr, &c) == 0);  // no callbacks at all is allowed
  CHECK(parker_connect(c, "/nonexistent/dir/parker.sock", "") == 0);  // an observer; fails later, retried
  CHECK(parker_connect(c, "/tmp/x.sock", "pool") == -EISCONN);
  CHECK(parker_connected(c) == 0);
  parker_close(c);
  parker_client_free(c);
  parker_client_free(nullptr);
  CHECK(std::string(parker_default_socket_path()).find("parker") != std::string::npos);
}
