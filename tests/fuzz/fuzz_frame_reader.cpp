// fuzz_frame_reader: protocol::FrameReader fed through a real socketpair, real fds attached.
//
// Input: chunks (fuzz_support.hpp), each one sendmsg with 0..253 fds on its first byte; the
// reader runs read_from() + next() until EAGAIN whenever a chunk asks, the socket is full,
// and at the end. The kernel decides how sends coalesce into reads, as it does in parker.
// Properties, each a trap when violated:
//   * no fd leaks: once the reader, its socket and every frame it handed out are gone, the
//     process has exactly the fds it had before the input (the reader owns each fd it
//     received until a frame takes it, and closes the rest on error or destruction);
//   * every frame holds exactly the fds its message carries, each one open;
//   * the frames are those the pure decoder finds in the bytes delivered, in order, and when
//     the reader ends without an error it has handed out all of them and kept the rest;
//   * after an error the reader holds nothing: no bytes, no fds.
#include <fcntl.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "fuzz_support.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"
#include "parker/unix_socket.hpp"

namespace proto = parker::protocol;

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Reads in one drain: each read returns at least a byte or EAGAIN, and one recvmsg stops at
// the first chunk that carries fds, so this is far more than any input needs.
constexpr int kMaxReadsPerDrain = 4096;

struct Receiver {
  int socket = -1;
  proto::FrameReader reader;
  std::vector<proto::Message> frames;  // what next() returned, fds checked and closed
  bool drained = false;                // the last drain read until EAGAIN

  // false once the reader will read no more (a protocol error, or MSG_CTRUNC).
  bool drain() {
    drained = false;
    for (int reads = 0; reads < kMaxReadsPerDrain; ++reads) {
      parker::Error e = reader.read_from(socket);
      if (e.is(EAGAIN)) {
        drained = true;
        return true;
      }
      if (e.failed()) return false;
      while (auto frame = reader.next()) {
        check(frame->fds.size() == proto::fd_count(frame->message));
        for (const parker::UniqueFd& fd : frame->fds) check(::fcntl(fd.get(), F_GETFD) != -1);
        frames.push_back(std::move(frame->message));
      }
      if (reader.error() != proto::DecodeError::none) {
        check(reader.queued_fds() == 0 && reader.buffered_bytes() == 0);
        return false;
      }
    }
    return true;
  }
};

// The frames the pure decoder finds in `stream`, as if every fd had arrived; `rest` is what
// is left after them.
std::vector<proto::Message> decode_all(std::span<const std::byte> stream, std::size_t& rest) {
  std::vector<proto::Message> out;
  for (;;) {
    proto::DecodeResult r = proto::decode(stream, std::numeric_limits<std::size_t>::max());
    if (r.status != proto::DecodeStatus::ok) break;
    out.push_back(std::move(r.message));
    stream = stream.subspan(r.consumed);
  }
  rest = stream.size();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  parker::fuzz::raise_fd_limit();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const parker::fuzz::FdSource source;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  std::vector<parker::fuzz::Chunk> chunks = parker::fuzz::split_chunks(input);

  const std::size_t fds_before = parker::fuzz::open_fd_count();
  {
    auto pair = parker::make_socket_pair(0, true);
    check(pair.ok());
    parker::UniqueFd sender = std::move(pair.value.first);
    Receiver receiver;
    receiver.socket = pair.value.second.get();

    bool reading = true;
    std::vector<std::byte> delivered =
        parker::fuzz::send_chunks(sender.get(), chunks, source, [&] { return reading = receiver.drain(); });

    std::size_t rest = 0;
    std::vector<proto::Message> expected = decode_all(delivered, rest);
    check(receiver.frames.size() <= expected.size());
    for (std::size_t i = 0; i < receiver.frames.size(); ++i) check(receiver.frames[i] == expected[i]);
    if (reading && receiver.drained && receiver.reader.error() == proto::DecodeError::none) {
      check(receiver.frames.size() == expected.size());
      check(receiver.reader.buffered_bytes() == rest);
    }
  }
  check(parker::fuzz::open_fd_count() == fds_before);
  return 0;
}
