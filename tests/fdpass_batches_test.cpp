// Passing fds in batches: 1, 2, 64 and 253 (SCM_MAX_FD) per message, on stream and seqpacket
// sockets, one message or several back to back, and a short write that must not send the
// fds twice. The receiver proves each fd is the sender's file, close-on-exec and usable.
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "parker/fd_passing.hpp"
#include "parker/send_queue.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"
#include "support/fdpass_helpers.hpp"

using namespace parker;
using namespace parker::test;

namespace {

const char* type_name(int type) { return type == SOCK_STREAM ? "SOCK_STREAM" : "SOCK_SEQPACKET"; }

}  // namespace

TEST_CASE("a batch of fds arrives as the same files, close-on-exec and usable", "[fdpass][batches]") {
  const int type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET);
  const std::size_t count = GENERATE(1u, 2u, 64u, 253u);
  DYNAMIC_SECTION(type_name(type) << " with " << count << " fds") {
    const std::size_t fds_before = open_fd_count();
    {
      auto [sender, receiver] = make_pair_or_throw(type);
      FdBatch batch(count);
      const std::string payload = "batch of " + std::to_string(count);
      REQUIRE(send_all_with_fds(sender.get(), as_bytes(payload), raw_fds(batch.to_send)) == Error{});
      batch.to_send.clear();  // the receiver holds its own copies now

      std::vector<UniqueFd> received;
      REQUIRE(receive_message(receiver.get(), payload.size(), received) == payload);
      batch.check_received(received);
    }
    REQUIRE(open_fd_count() == fds_before);
  }
}

TEST_CASE("several messages with fds sent back to back arrive each with its own fds",
          "[fdpass][batches]") {
  const int type = GENERATE(SOCK_STREAM, SOCK_SEQPACKET);
  DYNAMIC_SECTION(type_name(type)) {
    const std::size_t fds_before = open_fd_count();
    {
      auto [sender, receiver] = make_pair_or_throw(type);
      const std::vector<std::size_t> counts{3, 1, 253, 0, 64, 2};
      std::vector<FdBatch> batches;
      std::vector<std::string> payloads;
      // Everything is sent before anything is read: the messages queue up in the socket.
      for (std::size_t m = 0; m < counts.size(); ++m) {
        batches.emplace_back(counts[m]);
        payloads.push_back("message " + std::to_string(m) + " carries " + std::to_string(counts[m]));
        REQUIRE(send_all_with_fds(sender.get(), as_bytes(payloads[m]),
                                  raw_fds(batches[m].to_send)) == Error{});
        batches[m].to_send.clear();
      }
      for (std::size_t m = 0; m < counts.size(); ++m) {
        INFO("message " << m);
        std::vector<UniqueFd> received;
        REQUIRE(receive_message(receiver.get(), payloads[m].size(), received) == payloads[m]);
        batches[m].check_received(received);
      }
    }
    REQUIRE(open_fd_count() == fds_before);
  }
}

TEST_CASE("a short write on a stream socket never sends the fds twice", "[fdpass][batches]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM);
    int small = 4096;
    ::setsockopt(sender.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    // Far more than the socket buffer holds, so send_all_with_fds needs many sendmsg() calls.
    const std::string payload(4 << 20, 'x');
    FdBatch batch(2);

    std::size_t bytes_received = 0;
    std::vector<UniqueFd> received;
    std::vector<std::size_t> fds_at_offset;  // where in the stream each fd showed up
    std::thread reader([&, fd = receiver.get()] {
      std::vector<std::byte> buffer(64 * 1024);
      for (;;) {
        std::size_t before = received.size();
        auto got = receive_with_fds(fd, buffer, received);
        if (!got.ok() || got.value == 0) return;
        for (std::size_t i = before; i < received.size(); ++i) fds_at_offset.push_back(bytes_received);
        bytes_received += got.value;
      }
    });
    std::size_t sent = 0;
    Error error = send_all_with_fds(sender.get(), as_bytes(payload), raw_fds(batch.to_send), &sent);
    sender.reset();  // end of stream: the reader stops
    reader.join();

    REQUIRE(error == Error{});
    REQUIRE(sent == payload.size());
    REQUIRE(bytes_received == payload.size());
    REQUIRE(fds_at_offset == std::vector<std::size_t>{0, 0});  // with the first byte, once
    batch.to_send.clear();
    batch.check_received(received);
  }
  REQUIRE(open_fd_count() == fds_before);
}

TEST_CASE("SendQueue delivers every message and fd once across short writes",
          "[fdpass][batches][send_queue]") {
  const std::size_t fds_before = open_fd_count();
  {
    auto [sender, receiver] = make_pair_or_throw(SOCK_STREAM, /*nonblocking=*/true);
    const std::string payload(256 * 1024, 'q');  // several socket buffers' worth each
    constexpr std::size_t kMessages = 4;
    std::vector<FdBatch> batches;
    SendQueue queue;
    for (std::size_t m = 0; m < kMessages; ++m) {
      batches.emplace_back(m + 1);
      queue.push({std::vector<std::byte>(as_bytes(payload).begin(), as_bytes(payload).end()),
                  std::move(batches[m].to_send), {}});
    }
    REQUIRE(queue.queued_bytes() == kMessages * payload.size());

    // Alternate: write what fits, then read what is there. Each round moves at least one byte.
    std::vector<UniqueFd> received;
    std::vector<std::size_t> fds_at_offset;
    std::size_t bytes_received = 0;
    std::vector<std::byte> buffer(64 * 1024);
    for (int round = 0; round < 100000 && bytes_received < kMessages * payload.size(); ++round) {
      Error flushed = queue.flush(sender.get());
      REQUIRE((flushed == Error{} || flushed.is(EAGAIN)));
      for (;;) {
        // Never read past a message boundary, so each fd is seen with its own message.
        std::size_t left_in_message = payload.size() - bytes_received % payload.size();
        std::size_t before = received.size();
        auto got = receive_with_fds(receiver.get(), std::span(buffer).first(std::min(left_in_message, buffer.size())),
                                    received);
        if (got.error.is(EAGAIN)) break;
        REQUIRE(got.error == Error{});
        REQUIRE(got.value > 0);
        for (std::size_t i = before; i < received.size(); ++i) fds_at_offset.push_back(bytes_received);
        bytes_received += got.value;
      }
    }
    REQUIRE(queue.empty());
    REQUIRE(queue.queued_bytes() == 0);
    REQUIRE(bytes_received == kMessages * payload.size());
    // Message m's m+1 fds arrived with its first byte, and no fd arrived twice.
    std::vector<std::size_t> expected;
    for (std::size_t m = 0; m < kMessages; ++m) expected.insert(expected.end(), m + 1, m * payload.size());
    REQUIRE(fds_at_offset == expected);
    std::size_t next = 0;
    for (std::size_t m = 0; m < kMessages; ++m) {
      std::vector<UniqueFd> mine;
      for (std::size_t i = 0; i <= m; ++i) mine.push_back(std::move(received[next++]));
      batches[m].check_received(mine);
    }
  }
  REQUIRE(open_fd_count() == fds_before);
}
