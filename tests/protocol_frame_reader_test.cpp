// FrameReader over a real socketpair with real fds: frames split across reads, several
// frames per read, and every fd/count mismatch closing every fd that came with it.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "parker/fd_passing.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"

namespace proto = parker::protocol;
using parker::UniqueFd;
using parker::test::inode_of;
using parker::test::open_fd_count;
using Bytes = std::vector<std::byte>;

namespace {

struct Pair {
  UniqueFd sender;    // blocking
  UniqueFd receiver;  // non-blocking, as parker and the client use it
};

Pair make_pair() {
  auto pair = parker::make_socket_pair();
  REQUIRE(pair.ok());
  REQUIRE(parker::set_nonblocking(pair.value.second.get()).ok());
  return {std::move(pair.value.first), std::move(pair.value.second)};
}

// `n` fresh pipe read ends to pass around (the write ends are closed at once).
std::vector<UniqueFd> make_fds(std::size_t n) {
  std::vector<UniqueFd> fds;
  for (std::size_t i = 0; i < n; ++i) {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    ::close(p[1]);
    fds.emplace_back(p[0]);
  }
  return fds;
}

std::vector<int> raw(const std::vector<UniqueFd>& fds) {
  std::vector<int> out;
  for (const auto& fd : fds) out.push_back(fd.get());
  return out;
}

void send(int socket, std::span<const std::byte> bytes, const std::vector<int>& fds = {}) {
  REQUIRE(parker::send_all_with_fds(socket, bytes, fds).ok());
}

proto::Wake wake_of(std::size_t n) {
  proto::Wake w;
  for (std::size_t i = 0; i < n; ++i) w.records.push_back({100 + i, proto::WakeReason::readable, "blob" + std::to_string(i)});
  return w;
}

// Reads until the socket is empty, collecting every frame; stops early on a protocol error.
std::vector<proto::Frame> read_all(proto::FrameReader& reader, int socket) {
  std::vector<proto::Frame> frames;
  for (int i = 0; i < 1000; ++i) {
    parker::Error e = reader.read_from(socket);
    if (e.is(EAGAIN)) break;
    REQUIRE(e.ok());
    while (auto frame = reader.next()) frames.push_back(std::move(*frame));
    if (reader.error() != proto::DecodeError::none) break;
  }
  return frames;
}

}  // namespace

TEST_CASE("a frame with fds arrives with exactly its own fds, close-on-exec", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    for (std::size_t n : {1u, 2u, 253u}) {
      INFO(n << " fds");
      auto fds = make_fds(n);
      send(sender.get(), proto::encode(wake_of(n)), raw(fds));
      proto::FrameReader reader;
      auto frames = read_all(reader, receiver.get());
      REQUIRE(frames.size() == 1);
      auto& wake = std::get<proto::Wake>(frames[0].message);
      REQUIRE(wake.records.size() == n);
      REQUIRE(frames[0].fds.size() == n);
      for (std::size_t i = 0; i < n; ++i) {
        CHECK(wake.records[i].id == 100 + i);
        CHECK(inode_of(frames[0].fds[i].get()) == inode_of(fds[i].get()));  // the i-th fd is the i-th record's
        CHECK((::fcntl(frames[0].fds[i].get(), F_GETFD) & FD_CLOEXEC) != 0);
      }
      CHECK(reader.queued_fds() == 0);
      CHECK(reader.buffered_bytes() == 0);
    }
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a frame split across many reads is whole only at its last byte", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    auto fds = make_fds(3);
    Bytes frame = proto::encode(wake_of(3));
    proto::FrameReader reader;
    // The first byte carries the fds; then the rest dribbles in a byte or a few at a time.
    std::size_t sent = 0;
    std::size_t step = 1;
    while (sent < frame.size()) {
      std::size_t n = std::min(step, frame.size() - sent);
      send(sender.get(), std::span(frame).subspan(sent, n), sent == 0 ? raw(fds) : std::vector<int>{});
      sent += n;
      step = step % 5 + 1;
      REQUIRE(reader.read_from(receiver.get()).ok());
      CHECK(reader.queued_fds() == 3);
      auto got = reader.next();
      if (sent < frame.size()) {
        REQUIRE_FALSE(got.has_value());
        REQUIRE(reader.error() == proto::DecodeError::none);
      } else {
        REQUIRE(got.has_value());
        CHECK(got->fds.size() == 3);
        CHECK(std::get<proto::Wake>(got->message) == wake_of(3));
      }
    }
    CHECK(reader.read_from(receiver.get()).is(EAGAIN));
    CHECK(reader.queued_fds() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("a big frame split across many reads keeps its fds, and the idle reader then holds no buffer",
          "[protocol][frame_reader][memory]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    // 253 records with 2 KiB blobs: ~530 KiB, several times the socket buffer and the read size.
    proto::Wake big;
    for (std::size_t i = 0; i < 253; ++i) {
      big.records.push_back({100 + i, proto::WakeReason::readable, std::string(2048, static_cast<char>('a' + i % 26))});
    }
    Bytes frame = proto::encode(big);
    auto fds = make_fds(253);
    proto::FrameReader reader;
    std::optional<proto::Frame> got;
    std::size_t sent = 0;
    std::size_t reads = 0;
    const std::size_t steps[] = {1, 7, 4096, 40000, 3, 65536 + 5, 12345};
    for (std::size_t k = 0; sent < frame.size(); ++k) {
      std::size_t n = std::min(steps[k % std::size(steps)], frame.size() - sent);
      send(sender.get(), std::span(frame).subspan(sent, n), sent == 0 ? raw(fds) : std::vector<int>{});
      sent += n;
      for (;;) {
        parker::Error e = reader.read_from(receiver.get());
        if (e.is(EAGAIN)) break;
        REQUIRE(e.ok());
        ++reads;
        got = reader.next();
        REQUIRE(reader.error() == proto::DecodeError::none);
        if (got) break;
        CHECK(reader.queued_fds() == 253);
        // Grown geometrically for the frame in progress, never beyond it.
        CHECK(reader.buffer_capacity() <= 2 * reader.buffered_bytes());
        CHECK(reader.buffer_capacity() <= frame.size());
      }
      if (got) break;
    }
    CHECK(sent == frame.size());
    CHECK(reads > 10);
    REQUIRE(got.has_value());
    CHECK(std::get<proto::Wake>(got->message) == big);
    REQUIRE(got->fds.size() == 253);
    for (std::size_t i = 0; i < 253; ++i) CHECK(inode_of(got->fds[i].get()) == inode_of(fds[i].get()));
    // Idle again: no bytes, no fds, no buffer kept for them.
    CHECK_FALSE(reader.next().has_value());
    CHECK(reader.buffered_bytes() == 0);
    CHECK(reader.queued_fds() == 0);
    CHECK(reader.buffer_capacity() == 0);
    CHECK(reader.read_from(receiver.get()).is(EAGAIN));
    CHECK(reader.buffer_capacity() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("after whole frames a reader keeps only the bytes of the unfinished one", "[protocol][frame_reader][memory]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    // ~40 KiB of small frames glued in one read, then the first 20 bytes of a WAKE with fds.
    Bytes glued;
    for (std::uint32_t i = 0; i < 4000; ++i) proto::encode(proto::Credit{i}, glued);
    send(sender.get(), glued);
    Bytes wake = proto::encode(wake_of(2));
    auto fds = make_fds(2);
    send(sender.get(), std::span(wake).first(20), raw(fds));
    proto::FrameReader reader;
    auto frames = read_all(reader, receiver.get());
    REQUIRE(reader.error() == proto::DecodeError::none);
    REQUIRE(frames.size() == 4000);
    CHECK(std::get<proto::Credit>(frames.back().message).grant == 3999);
    CHECK(reader.buffered_bytes() == 20);
    CHECK(reader.queued_fds() == 2);
    CHECK(reader.buffer_capacity() <= 20 + 256);  // not the 40 KiB read it came in
    // The rest arrives: the frame comes out with its fds, and nothing is kept.
    send(sender.get(), std::span(wake).subspan(20));
    frames = read_all(reader, receiver.get());
    REQUIRE(frames.size() == 1);
    CHECK(std::get<proto::Wake>(frames[0].message) == wake_of(2));
    REQUIRE(frames[0].fds.size() == 2);
    CHECK(inode_of(frames[0].fds[1].get()) == inode_of(fds[1].get()));
    CHECK(reader.buffer_capacity() == 0);
    CHECK(reader.queued_fds() == 0);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("many idle readers after a big frame each hold no buffer", "[protocol][frame_reader][memory]") {
  // What parker's sessions look like between requests: each read a big frame once.
  auto [sender, receiver] = make_pair();
  Bytes frame = proto::encode(proto::StatsReply{std::string(60 * 1024, 'x')});
  std::vector<proto::FrameReader> readers(64);
  for (auto& reader : readers) {
    send(sender.get(), frame);
    auto frames = read_all(reader, receiver.get());
    REQUIRE(frames.size() == 1);
    CHECK(std::get<proto::StatsReply>(frames[0].message).text.size() == 60 * 1024);
  }
  for (auto& reader : readers) {
    CHECK(reader.buffered_bytes() == 0);
    CHECK(reader.buffer_capacity() == 0);
  }
}

TEST_CASE("several frames in one read come out one by one, in order", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    // Frames without fds are glued into one read by the kernel.
    Bytes many;
    proto::encode(proto::Credit{1}, many);
    proto::encode(proto::Closed{{{9, proto::CloseReason::dropped}}}, many);
    proto::encode(proto::Credit{2}, many);
    send(sender.get(), many);
    // Then a WAKE with fds and, right behind it, more frames without.
    auto fds = make_fds(2);
    send(sender.get(), proto::encode(wake_of(2)), raw(fds));
    send(sender.get(), proto::encode(proto::Credit{3}));
    proto::FrameReader reader;
    auto frames = read_all(reader, receiver.get());
    REQUIRE(reader.error() == proto::DecodeError::none);
    REQUIRE(frames.size() == 5);
    CHECK(std::get<proto::Credit>(frames[0].message).grant == 1);
    CHECK(std::get<proto::Closed>(frames[1].message).records.at(0).id == 9);
    CHECK(std::get<proto::Credit>(frames[2].message).grant == 2);
    CHECK(frames[3].fds.size() == 2);
    CHECK(inode_of(frames[3].fds[1].get()) == inode_of(fds[1].get()));
    CHECK(std::get<proto::Credit>(frames[4].message).grant == 3);
    for (auto i : {0, 1, 2, 4}) CHECK(frames[static_cast<std::size_t>(i)].fds.empty());
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("feed() with many frames and their fds at once", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    Bytes bytes;
    proto::encode(wake_of(2), bytes);
    proto::encode(proto::Credit{7}, bytes);
    proto::FrameReader reader;
    reader.feed(bytes, make_fds(2));
    auto first = reader.next();
    REQUIRE(first.has_value());
    CHECK(first->fds.size() == 2);
    auto second = reader.next();
    REQUIRE(second.has_value());
    CHECK(std::get<proto::Credit>(second->message).grant == 7);
    CHECK_FALSE(reader.next().has_value());
    CHECK(reader.error() == proto::DecodeError::none);

    // The kernel glues an fd-less frame to the start of the next one with its fds: the fds
    // queued while the first frame comes out belong to the second, not a surplus.
    Bytes glued;
    proto::encode(proto::Credit{8}, glued);
    Bytes wake = proto::encode(wake_of(2));
    glued.insert(glued.end(), wake.begin(), wake.begin() + 3);
    proto::FrameReader reader2;
    reader2.feed(glued, make_fds(2));
    auto credit = reader2.next();
    REQUIRE(credit.has_value());
    CHECK(credit->fds.empty());
    CHECK_FALSE(reader2.next().has_value());
    CHECK(reader2.error() == proto::DecodeError::none);
    reader2.feed(std::span(wake).subspan(3), {});
    auto woken = reader2.next();
    REQUIRE(woken.has_value());
    CHECK(woken->fds.size() == 2);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("fd mismatches are protocol errors that close every fd received", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    proto::FrameReader reader;

    SECTION("more fds than the whole frame declares") {
      auto fds = make_fds(3);
      send(sender.get(), proto::encode(wake_of(2)), raw(fds));
      // Regression: the frame used to come out before the surplus was noticed on the next call.
      CHECK(read_all(reader, receiver.get()).empty());
    }
    SECTION("fds on a frame that carries none") {
      auto fds = make_fds(1);
      send(sender.get(), proto::encode(proto::Credit{1}), raw(fds));
      CHECK(read_all(reader, receiver.get()).empty());
    }
    SECTION("more fds than a frame still in progress declares") {
      auto fds = make_fds(4);
      Bytes frame = proto::encode(wake_of(2));
      send(sender.get(), std::span(frame).first(proto::kHeaderSize + 1), raw(fds));
      CHECK(read_all(reader, receiver.get()).empty());
    }
    SECTION("fewer fds than the frame declares") {
      auto fds = make_fds(1);
      send(sender.get(), proto::encode(wake_of(2)), raw(fds));
      CHECK(read_all(reader, receiver.get()).empty());
    }
    SECTION("a frame that declares fds but none came") {
      send(sender.get(), proto::encode(wake_of(1)));
      CHECK(read_all(reader, receiver.get()).empty());
    }
    SECTION("a malformed body after fds arrived") {
      auto fds = make_fds(2);
      Bytes frame = proto::encode(wake_of(2));
      frame[proto::kHeaderSize + 2 + 8] = std::byte{0x77};  // the first record's reason
      send(sender.get(), frame, raw(fds));
      CHECK(read_all(reader, receiver.get()).empty());
      CHECK(reader.error() == proto::DecodeError::bad_value);
    }
    INFO("decode error: " << proto::to_string(reader.error()));
    CHECK(reader.error() != proto::DecodeError::none);
    CHECK(reader.queued_fds() == 0);
    CHECK(reader.buffered_bytes() == 0);
    CHECK(reader.buffer_capacity() == 0);
    // The error sticks: nothing more is read or decoded.
    CHECK(reader.read_from(receiver.get()).is(EPROTO));
    CHECK_FALSE(reader.next().has_value());
  }
  // Our copies were closed when the sections ended; the reader closed what it received.
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("fd_mismatch is reported as such", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    proto::FrameReader reader;
    reader.feed(proto::encode(proto::Credit{1}), make_fds(1));
    CHECK_FALSE(reader.next().has_value());
    CHECK(reader.error() == proto::DecodeError::fd_mismatch);

    proto::FrameReader short_reader;
    short_reader.feed(proto::encode(wake_of(3)), make_fds(2));
    CHECK_FALSE(short_reader.next().has_value());
    CHECK(short_reader.error() == proto::DecodeError::fd_mismatch);
    CHECK(short_reader.queued_fds() == 0);

    proto::FrameReader between;
    between.feed({}, make_fds(1));  // fds with no frame at all
    CHECK_FALSE(between.next().has_value());
    CHECK(between.error() == proto::DecodeError::fd_mismatch);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("fds queued in a reader are closed when it is destroyed", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    auto fds = make_fds(5);
    Bytes frame = proto::encode(wake_of(5));
    send(sender.get(), std::span(frame).first(10), raw(fds));  // a frame that never completes
    proto::FrameReader reader;
    REQUIRE(reader.read_from(receiver.get()).ok());
    CHECK_FALSE(reader.next().has_value());
    CHECK(reader.queued_fds() == 5);
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("read_from reports an empty socket and a closed peer", "[protocol][frame_reader]") {
  std::size_t baseline = open_fd_count();
  {
    auto [sender, receiver] = make_pair();
    proto::FrameReader reader;
    CHECK(reader.read_from(receiver.get()).is(EAGAIN));
    sender.reset();
    CHECK(reader.read_from(receiver.get()).is(ECONNRESET));
  }
  CHECK(open_fd_count() == baseline);
}

TEST_CASE("fds the kernel had to drop (MSG_CTRUNC) are reported and none is kept", "[protocol][frame_reader]") {
  // Out of descriptor slots, the kernel truncates the control message and closes what did not
  // fit: exactly the failure parker's credit scheme exists to prevent. Each test case runs in
  // its own process, so lowering the limit here touches nothing else.
  auto [sender, receiver] = make_pair();
  auto fds = make_fds(20);
  send(sender.get(), proto::encode(wake_of(20)), raw(fds));
  std::size_t baseline = open_fd_count();
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  // Room for 3 of the 20 only: fill every hole below the highest open fd, then cap just above.
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) highest = fd;
  }
  std::vector<UniqueFd> fillers;
  for (;;) {
    UniqueFd filler(::dup(0));
    REQUIRE(filler.valid());
    if (filler.get() > highest) break;
    fillers.push_back(std::move(filler));
  }
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(highest + 1 + 3);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  proto::FrameReader reader;
  parker::Error e = reader.read_from(receiver.get());
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  CHECK(e.is(parker::kErrControlTruncated));
  CHECK(reader.queued_fds() == 0);
  fillers.clear();
  CHECK(open_fd_count() == baseline);
}
