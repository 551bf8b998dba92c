// Peer credentials: the kernel's word on who is at the other end of a Unix socket.
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>

#include "parker/peer_credentials.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"
#include "support/fdpass_helpers.hpp"
#include "support/process.hpp"

using namespace parker;
using namespace parker::test;

namespace {

// A Linux abstract socket name no other test (or parallel run) uses.
std::string unique_abstract_name(const char* what) {
  static int counter = 0;
  return "@parker-test-" + std::string(what) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter);
}

}  // namespace

TEST_CASE("peer credentials of a socketpair are our own", "[fdpass][credentials]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [a, b] = make_pair_or_throw(SOCK_STREAM);
    auto cred = peer_credentials(a.get());
    REQUIRE(cred.error == Error{});
    REQUIRE(cred.value.pid == ::getpid());
    REQUIRE(cred.value.uid == ::getuid());
    REQUIRE(cred.value.gid == ::getgid());
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("peer credentials match the connecting process, both ways", "[fdpass][credentials]") {
  const std::size_t fds_before = open_fd_count();
  {
    TempDir dir;
    const std::string path = dir.file("cred.sock");
    auto listener = listen_unix(path);
    REQUIRE(listener.error == Error{});
    auto client = connect_unix(path);
    REQUIRE(client.error == Error{});
    auto server_side = accept_connection(listener.value.get());
    REQUIRE(server_side.error == Error{});
    for (int fd : {client.value.get(), server_side.value.get()}) {
      auto cred = peer_credentials(fd);
      REQUIRE(cred.error == Error{});
      REQUIRE(cred.value.pid == ::getpid());
      REQUIRE(cred.value.uid == ::getuid());
      REQUIRE(cred.value.gid == ::getgid());
    }
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("a child that became nobody shows nobody's uid", "[fdpass][credentials]") {
  if (::geteuid() != 0) {
    WARN("needs root to setuid(nobody); not run");
    return;
  }
  const passwd* nobody = ::getpwnam("nobody");
  REQUIRE(nobody != nullptr);
  const uid_t nobody_uid = nobody->pw_uid;
  const gid_t nobody_gid = nobody->pw_gid;

  const std::size_t fds_before = open_fd_count();
  {
    // Abstract namespace: no file, so no directory permissions stand in nobody's way.
    const std::string name = unique_abstract_name("nobody");
    auto listener = listen_unix(name, {.nonblocking = false});
    REQUIRE(listener.error == Error{});

    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // Only system calls from here on: drop to nobody, then connect and wait to be let go.
      if (::setgroups(0, nullptr) != 0 || ::setgid(nobody_gid) != 0 || ::setuid(nobody_uid) != 0) {
        ::_exit(2);
      }
      auto connection = connect_unix(name);
      if (!connection.ok()) ::_exit(3);
      char byte;
      (void)::read(connection.value.get(), &byte, 1);  // until the parent closes its end
      ::_exit(0);
    }
    auto accepted = accept_connection(listener.value.get(), false);
    REQUIRE(accepted.error == Error{});
    auto cred = peer_credentials(accepted.value.get());
    accepted.value.reset();  // lets the child finish
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(exit_code(status) == 0);

    REQUIRE(cred.error == Error{});
    REQUIRE(cred.value.uid == nobody_uid);
    REQUIRE(cred.value.gid == nobody_gid);
    REQUIRE(cred.value.pid == child);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("peer credentials of something that is not a connected socket is an error",
          "[fdpass][credentials]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [read_end, write_end] = make_pipe();
    REQUIRE(peer_credentials(read_end.get()).error.is(ENOTSOCK));
    REQUIRE(peer_credentials(-1).error.is(EBADF));
  }
  REQUIRE(open_fd_count() == fds_before);
}
