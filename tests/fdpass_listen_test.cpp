// Listening on a Unix socket path safely: a stale socket is replaced, anything else at the
// path is refused and left untouched, a live listener is refused, permissions are exact.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"
#include "support/fdpass_helpers.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;

namespace {

mode_t permissions_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  REQUIRE(S_ISSOCK(st.st_mode));
  return st.st_mode & 07777;
}

std::string contents_of(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The listener works: a client connects and is accepted, and both ends are close-on-exec.
void require_serves(int listener, const std::string& path, int type = SOCK_STREAM) {
  auto client = connect_unix(path, type);
  REQUIRE(client.error == Error{});
  auto accepted = accept_connection(listener);
  REQUIRE(accepted.error == Error{});
  REQUIRE(is_cloexec(client.value.get()));
  REQUIRE(is_cloexec(accepted.value.get()));
  REQUIRE(socket_type(accepted.value.get()).value == type);
}

// Restores the umask when a test that changed it ends, however it ends.
struct ScopedUmask {
  explicit ScopedUmask(mode_t mask) : old(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old); }
  mode_t old;
};

std::string unique_abstract_name() {
  static int counter = 0;
  return "@parker-test-listen-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

}  // namespace

TEST_CASE("a new socket gets mode 0600 whatever the umask, or the mode asked for",
          "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const mode_t umask_value = GENERATE(mode_t{0}, mode_t{022}, mode_t{077});
    ScopedUmask scoped(umask_value);
    auto listener = listen_unix(dir.file("default.sock"));
    REQUIRE(listener.error == Error{});
    REQUIRE(permissions_of(dir.file("default.sock")) == 0600);
    REQUIRE(is_cloexec(listener.value.get()));
    require_serves(listener.value.get(), dir.file("default.sock"));

    auto custom = listen_unix(dir.file("custom.sock"), {.mode = 0660});
    REQUIRE(custom.error == Error{});
    REQUIRE(permissions_of(dir.file("custom.sock")) == 0660);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("a stale socket left by a dead server is replaced", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("stale.sock");
    {
      auto dead = listen_unix(path);
      REQUIRE(dead.error == Error{});
    }  // closed without unlinking, as a crashed server leaves it
    REQUIRE(std::filesystem::is_socket(path));
    REQUIRE(connect_unix(path).error.is(ECONNREFUSED));

    auto listener = listen_unix(path);
    REQUIRE(listener.error == Error{});
    require_serves(listener.value.get(), path);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("a path that is not a socket is refused and left untouched", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    SECTION("a regular file") {
      const std::string path = dir.file("precious.txt");
      std::ofstream(path) << "do not delete me\n";
      const std::size_t fds_before_listen = open_fd_count();
      auto listener = listen_unix(path);
      REQUIRE(listener.error.is(kErrNotASocketPath));
      REQUIRE(open_fd_count() == fds_before_listen);
      REQUIRE(contents_of(path) == "do not delete me\n");
    }
    SECTION("a directory") {
      const std::string path = dir.file("subdir");
      std::filesystem::create_directory(path);
      REQUIRE(listen_unix(path).error.is(kErrNotASocketPath));
      REQUIRE(std::filesystem::is_directory(path));
    }
    SECTION("a symlink, even to a stale socket") {
      const std::string target = dir.file("real.sock");
      { REQUIRE(listen_unix(target).error == Error{}); }
      const std::string link = dir.file("link.sock");
      std::filesystem::create_symlink(target, link);
      REQUIRE(listen_unix(link).error.is(kErrNotASocketPath));
      REQUIRE(std::filesystem::is_symlink(link));
      REQUIRE(std::filesystem::is_socket(target));
    }
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("a path where a live listener is refused with EADDRINUSE", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("live.sock");
    auto live = listen_unix(path);
    REQUIRE(live.error == Error{});

    const std::size_t fds_before_second = open_fd_count();
    auto second = listen_unix(path);
    REQUIRE(second.error.is(EADDRINUSE));
    REQUIRE(open_fd_count() == fds_before_second);

    // The live one is unharmed; its first connection is the probe that found it alive.
    auto probe = accept_connection(live.value.get());
    REQUIRE(probe.error == Error{});
    require_serves(live.value.get(), path);
  }
  REQUIRE(open_fd_count() == fds_before);
}

// Regression: the liveness probe used a blocking connect(), which waits (here: forever) for
// as long as a live listener's backlog stays full.
TEST_CASE("a live listener with a full backlog is refused at once", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("busy.sock");
    auto live = listen_unix(path, {.backlog = 1});
    REQUIRE(live.error == Error{});
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    std::vector<UniqueFd> waiting;
    bool full = false;
    for (int i = 0; i < 100 && !full; ++i) {  // the backlog fills after a couple of connections
      UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      REQUIRE(client.valid());
      if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        REQUIRE(errno == EAGAIN);
        full = true;
      }
      waiting.push_back(std::move(client));
    }
    REQUIRE(full);
    REQUIRE(listen_unix(path).error.is(EADDRINUSE));
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("the abstract namespace: no file, and a taken name is refused", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    const std::string name = unique_abstract_name();
    auto listener = listen_unix(name);
    REQUIRE(listener.error == Error{});
    REQUIRE_FALSE(std::filesystem::exists(name));
    REQUIRE_FALSE(std::filesystem::exists(name.substr(1)));
    require_serves(listener.value.get(), name);
    REQUIRE(listen_unix(name).error.is(EADDRINUSE));
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("SOCK_SEQPACKET listeners work like stream ones", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("seq.sock");
    auto listener = listen_unix(path, {.type = SOCK_SEQPACKET});
    REQUIRE(listener.error == Error{});
    REQUIRE(socket_type(listener.value.get()).value == SOCK_SEQPACKET);
    require_serves(listener.value.get(), path, SOCK_SEQPACKET);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("connect and accept report what went wrong", "[fdpass][listen]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    REQUIRE(connect_unix(dir.file("nothing-here.sock")).error.is(ENOENT));
    REQUIRE(connect_unix(std::string(200, 'x')).error.is(ENAMETOOLONG));
    REQUIRE(listen_unix(dir.path() + "/" + std::string(200, 'x')).error.is(ENAMETOOLONG));
    REQUIRE(connect_unix("").error.is(EINVAL));
    REQUIRE(listen_unix(dir.file("no-such-dir/x.sock")).error.is(ENOENT));

    std::ofstream(dir.file("file")) << "x";
    REQUIRE(connect_unix(dir.file("file")).error.is(ECONNREFUSED));

    auto listener = listen_unix(dir.file("quiet.sock"));
    REQUIRE(listener.error == Error{});
    REQUIRE(accept_connection(listener.value.get()).error.is(EAGAIN));  // nobody waiting

    auto [read_end, write_end] = make_pipe();
    REQUIRE(socket_type(read_end.get()).error.is(ENOTSOCK));
  }
  REQUIRE(open_fd_count() == fds_before);
}
