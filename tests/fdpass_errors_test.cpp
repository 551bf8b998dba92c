// Every way passing fds can fail, and that none of them leaks or loses an fd: a truncated
// control message (MSG_CTRUNC), credentials riding along, a full non-blocking socket, a
// closed peer, bad arguments. /proc/self/fd is counted before and after each.
#include <sys/resource.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "parker/error.hpp"
#include "parker/fd_passing.hpp"
#include "parker/send_queue.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"
#include "support/fdpass_helpers.hpp"

using namespace parker;
using namespace parker::test;

namespace {

const char* type_name(int type) { return type == SOCK_STREAM ? "SOCK_STREAM" : "SOCK_SEQPACKET"; }

// Fills a non-blocking socket until the kernel says EAGAIN; returns the bytes it took.
std::size_t fill_until_full(int socket) {
  const std::string chunk(4096, 'f');
  std::size_t total = 0;
  for (int i = 0; i < 100000; ++i) {  // bounded: a socket buffer is far smaller
    auto sent = send_with_fds(socket, as_bytes(chunk), {});
    if (sent.error.is(EAGAIN)) return total;
    REQUIRE(sent.error == Error{});
    total += sent.value;
  }
  FAIL("socket never filled up");
  return total;
}

// Reads and discards `size` bytes, failing if any fd came with them.
void drain_bytes(int socket, std::size_t size) {
  std::vector<std::byte> buffer(64 * 1024);
  std::vector<UniqueFd> fds;
  while (size > 0) {
    auto got = receive_with_fds(socket, std::span(buffer).first(std::min(size, buffer.size())), fds);
    REQUIRE(got.error == Error{});
    REQUIRE(got.value > 0);
    size -= got.value;
  }
  REQUIRE(fds.empty());
}

}  // namespace

TEST_CASE("MSG_CTRUNC: a receiver accepting too few fds gets an error and no new fds",
          "[fdpass][errors]") {
  const int type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET);
  // {fds sent, max_fds}: too small a control buffer (the kernel truncates), and a few over
  // max_fds that fit the spare credentials room (the library must still refuse them).
  const auto [sent_count, max_fds] = GENERATE(table<std::size_t, std::size_t>(
      {{1, 0}, {5, 2}, {3, 1}, {253, 252}, {253, 0}, {64, 10}}));
  DYNAMIC_SECTION(type_name(type) << ": " << sent_count << " fds, max_fds " << max_fds) {
    const std::size_t fds_before = open_fd_count();
    {
      auto [sender, receiver] = make_pair_or_throw(type);
      FdBatch batch(sent_count);
      REQUIRE(send_all_with_fds(sender.get(), as_bytes("xy"), raw_fds(batch.to_send)) == Error{});
      batch.to_send.clear();

      std::vector<UniqueFd> received;
      received.emplace_back(::dup(0));  // what the caller had before stays untouched
      const int earlier = received.front().get();
      const std::size_t fds_before_receive = open_fd_count();
      std::array<std::byte, 2> buffer{};
      auto got = receive_with_fds(receiver.get(), buffer, received, max_fds);
      REQUIRE(got.error.is(kErrControlTruncated));
      REQUIRE(got.value == 2);  // the data was consumed all the same
      REQUIRE(open_fd_count() == fds_before_receive);
      REQUIRE(received.size() == 1);
      REQUIRE(received.front().get() == earlier);
      REQUIRE(describe(got.error).find("MSG_CTRUNC") != std::string::npos);
    }
    REQUIRE(open_fd_count() == fds_before);
  }
}

TEST_CASE("MSG_CTRUNC: a receiver out of descriptors closes what arrived", "[fdpass][errors]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM);
    FdBatch batch(16);
    REQUIRE(send_all_with_fds(sender.get(), as_bytes("z"), raw_fds(batch.to_send)) == Error{});
    batch.to_send.clear();

    // Leave room for about two new fds below the limit, so the kernel installs a few and
    // drops the rest. Restored before any check can end the test.
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    const std::size_t fds_before_receive = open_fd_count();
    int probe = ::dup(0);
    ::close(probe);  // the lowest free fd number
    rlimit tight = old;
    tight.rlim_cur = static_cast<rlim_t>(probe) + 2;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
    std::vector<UniqueFd> received;
    std::array<std::byte, 1> buffer{};
    auto got = receive_with_fds(receiver.get(), buffer, received);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);

    REQUIRE(got.error.is(kErrControlTruncated));
    REQUIRE(received.empty());
    REQUIRE(open_fd_count() == fds_before_receive);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("credentials arriving with fds (SO_PASSCRED) leak nothing", "[fdpass][errors][credentials]") {
  const int type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET);
  const std::size_t count = GENERATE(1u, 8u, 253u);
  DYNAMIC_SECTION(type_name(type) << " with " << count << " fds") {
    const std::size_t fds_before = open_fd_count();
    {
      auto [sender, receiver] = make_pair_or_throw(type);
      int on = 1;
      REQUIRE(::setsockopt(receiver.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);

      SECTION("room for every fd: all arrive, the credentials are ignored") {
        FdBatch batch(count);
        REQUIRE(send_all_with_fds(sender.get(), as_bytes("cred"), raw_fds(batch.to_send)) == Error{});
        batch.to_send.clear();
        std::vector<UniqueFd> received;
        REQUIRE(receive_message(receiver.get(), 4, received, count) == "cred");
        batch.check_received(received);
      }
      SECTION("room for one fd fewer: truncated, none kept") {
        FdBatch batch(count);
        REQUIRE(send_all_with_fds(sender.get(), as_bytes("cred"), raw_fds(batch.to_send)) == Error{});
        batch.to_send.clear();
        const std::size_t fds_before_receive = open_fd_count();
        std::vector<UniqueFd> received;
        std::array<std::byte, 4> buffer{};
        auto got = receive_with_fds(receiver.get(), buffer, received, count - 1);
        REQUIRE(got.error.is(kErrControlTruncated));
        REQUIRE(received.empty());
        REQUIRE(open_fd_count() == fds_before_receive);
      }
    }
    REQUIRE(open_fd_count() == fds_before);
  }
}

TEST_CASE("a full non-blocking socket reports EAGAIN and a retry loses nothing", "[fdpass][errors]") {
  const int type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET);
  DYNAMIC_SECTION(type_name(type)) {
    const std::size_t fds_before = open_fd_count();
    {
      auto [sender, receiver] = make_pair_or_throw(type, /*nonblocking=*/true);
      const std::size_t filler = fill_until_full(sender.get());
      REQUIRE(filler > 0);

      FdBatch batch(3);
      const std::size_t fds_while_full = open_fd_count();
      auto refused = send_with_fds(sender.get(), as_bytes("late"), raw_fds(batch.to_send));
      REQUIRE(refused.error.is(EAGAIN));
      REQUIRE(refused.value == 0);
      REQUIRE(open_fd_count() == fds_while_full);  // nothing in flight, the sender still owns them
      std::size_t partial = 0;
      REQUIRE(send_all_with_fds(sender.get(), as_bytes("late"), raw_fds(batch.to_send), &partial).is(EAGAIN));
      REQUIRE(partial == 0);

      drain_bytes(receiver.get(), filler);
      REQUIRE(send_all_with_fds(sender.get(), as_bytes("late"), raw_fds(batch.to_send)) == Error{});
      batch.to_send.clear();
      REQUIRE(set_nonblocking(receiver.get(), false) == Error{});
      std::vector<UniqueFd> received;
      REQUIRE(receive_message(receiver.get(), 4, received) == "late");
      batch.check_received(received);
    }
    REQUIRE(open_fd_count() == fds_before);
  }
}

TEST_CASE("SendQueue keeps its fds while the socket is full and delivers them when it drains",
          "[fdpass][errors][send_queue]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM, /*nonblocking=*/true);
    const std::size_t filler = fill_until_full(sender.get());
    std::vector<FdBatch> batches;
    SendQueue queue;
    for (std::size_t m = 0; m < 3; ++m) {
      batches.emplace_back(2);
      queue.push({{std::byte{'a'}, std::byte(m)}, std::move(batches[m].to_send), {}});
    }
    const std::size_t fds_while_full = open_fd_count();
    REQUIRE(queue.flush(sender.get()).is(EAGAIN));
    REQUIRE(queue.size() == 3);
    REQUIRE(open_fd_count() == fds_while_full);

    drain_bytes(receiver.get(), filler);
    REQUIRE(queue.flush(sender.get()) == Error{});
    REQUIRE(queue.empty());
    REQUIRE(set_nonblocking(receiver.get(), false) == Error{});
    for (std::size_t m = 0; m < 3; ++m) {
      std::vector<UniqueFd> received;
      REQUIRE(receive_message(receiver.get(), 2, received) == std::string{'a', static_cast<char>(m)});
      batches[m].check_received(received);
    }
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("SendQueue gives back the fds of messages not yet started", "[fdpass][errors][send_queue]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM, /*nonblocking=*/true);
    int small = 4096;
    ::setsockopt(sender.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    FdBatch first(2), second(3);
    const auto first_ids = first.identities;
    const auto second_ids = second.identities;
    SendQueue queue;
    // The first message is too big to go at once: it starts (its fds go), the second waits.
    queue.push({std::vector<std::byte>(1 << 20, std::byte{'b'}), std::move(first.to_send), {}});
    queue.push({{std::byte{'c'}}, std::move(second.to_send), {}});
    REQUIRE(queue.flush(sender.get()).is(EAGAIN));

    auto unsent = queue.take_unsent();
    REQUIRE(unsent.size() == 1);
    REQUIRE(unsent[0].fds.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(identity_of(unsent[0].fds[i].get()) == second_ids[i]);
    REQUIRE(queue.size() == 1);  // the started one stays: its fds are the receiver's already
    queue.clear();
    REQUIRE(queue.empty());
    REQUIRE(queue.queued_bytes() == 0);

    std::vector<std::byte> buffer(1 << 16);
    std::vector<UniqueFd> received;
    auto got = receive_with_fds(receiver.get(), buffer, received);
    REQUIRE(got.error == Error{});
    REQUIRE(received.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) REQUIRE(identity_of(received[i].get()) == first_ids[i]);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("a closed peer gives EPIPE, not SIGPIPE, and the sender keeps its fds", "[fdpass][errors]") {
  const int type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET);
  DYNAMIC_SECTION(type_name(type)) {
    const std::size_t fds_before = open_fd_count();
    {
      auto [sender, receiver] = make_pair_or_throw(type);
      FdBatch batch(4);
      receiver.reset();
      const std::size_t fds_after_close = open_fd_count();
      auto sent = send_with_fds(sender.get(), as_bytes("gone"), raw_fds(batch.to_send));
      REQUIRE(sent.error.is(EPIPE));
      REQUIRE(describe(sent.error).find("EPIPE") != std::string::npos);
      REQUIRE(open_fd_count() == fds_after_close);
      for (std::size_t i = 0; i < 4; ++i) REQUIRE(identity_of(batch.to_send[i].get()) == batch.identities[i]);
    }
    REQUIRE(open_fd_count() == fds_before);
  }
}

TEST_CASE("a peer that closed reads as end of stream, with no fds", "[fdpass][errors]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM);
    sender.reset();
    std::vector<UniqueFd> received;
    std::array<std::byte, 8> buffer{};
    auto got = receive_with_fds(receiver.get(), buffer, received);
    REQUIRE(got.error == Error{});
    REQUIRE(got.value == 0);
    REQUIRE(received.empty());
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("bad arguments are refused before anything is sent or received", "[fdpass][errors]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM, /*nonblocking=*/true);
    FdBatch batch(1);
    std::vector<UniqueFd> received;
    std::array<std::byte, 8> buffer{};

    SECTION("empty data: fds need a byte to ride on") {
      REQUIRE(send_with_fds(sender.get(), {}, raw_fds(batch.to_send)).error.is(EINVAL));
      REQUIRE(send_all_with_fds(sender.get(), {}, raw_fds(batch.to_send)) == Error{});  // nothing to do
    }
    SECTION("more than kMaxFdsPerMessage fds") {
      std::vector<int> too_many(kMaxFdsPerMessage + 1, batch.to_send[0].get());
      REQUIRE(send_with_fds(sender.get(), as_bytes("x"), too_many).error.is(EINVAL));
    }
    SECTION("an fd that is not open") {
      const int closed_fd = ::dup(0);
      ::close(closed_fd);
      std::vector<int> bad{batch.to_send[0].get(), closed_fd};
      REQUIRE(send_with_fds(sender.get(), as_bytes("x"), bad).error.is(EBADF));
    }
    SECTION("an empty receive buffer") {
      REQUIRE(receive_with_fds(receiver.get(), {}, received).error.is(EINVAL));
    }
    SECTION("not a socket") {
      auto [read_end, write_end] = make_pipe();
      REQUIRE(send_with_fds(write_end.get(), as_bytes("x"), raw_fds(batch.to_send)).error.is(ENOTSOCK));
      REQUIRE(receive_with_fds(read_end.get(), buffer, received).error.is(ENOTSOCK));
    }
    // Nothing went anywhere: the receiver finds its socket empty.
    REQUIRE(receive_with_fds(receiver.get(), buffer, received).error.is(EAGAIN));
    REQUIRE(received.empty());
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("errors describe themselves with their errno name", "[fdpass][errors]") {
  REQUIRE(describe(Error{}) == "success");
  REQUIRE(describe(Error{EAGAIN}).find("EAGAIN") != std::string::npos);
  REQUIRE(describe(Error{kErrNotASocketPath}).find("not a socket") != std::string::npos);
  REQUIRE(describe(Error{EDOM}).find("errno") != std::string::npos);  // an unnamed one still reads
}
