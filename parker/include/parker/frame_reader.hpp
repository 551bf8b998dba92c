// FrameReader: turns what recvmsg() delivers on a stream socket (bytes, and fds attached to
// some of them) into whole protocol frames, each with exactly the fds it declares.
//
// Invariant: every fd received is owned by the reader until a frame takes it; on a protocol
// error or on destruction all of them are closed. A peer that sends more fds than its
// frames account for is a protocol error (fd_mismatch), detected as soon as it is certain.
//
// Memory: an idle reader holds nothing. recvmsg() reads into a per-thread 64 KiB scratch
// buffer; the reader keeps only the bytes not yet taken by next() (sized to them, grown
// geometrically up to the frame's declared size while a big frame arrives) and frees them
// as soon as the last one is taken. A peer that has half-sent a frame costs at most twice
// what it sent, never more than the frame declares.
// (Each reader used to keep a 64 KiB buffer for life: 5,000 sessions, 300 MB in parker.)
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "parker/error.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"

namespace parker::protocol {

struct Frame {
  Message message;
  std::vector<UniqueFd> fds;  // fds[i] belongs to record i (PARK, REJECTED, WAKE)
};

class FrameReader {
 public:
  // Reads once from `socket` (non-blocking). Returns ok when bytes arrived, EAGAIN when
  // there was nothing, ECONNRESET when the peer closed, kErrControlTruncated, or the
  // socket's error. After an error other than EAGAIN the connection is unusable.
  [[nodiscard]] Error read_from(int socket);

  // The next whole frame, or nothing (need more bytes). On a malformed stream returns
  // nothing and sets error(); every queued fd has then been closed.
  [[nodiscard]] std::optional<Frame> next();

  [[nodiscard]] DecodeError error() const noexcept { return error_; }
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return buffer_.size() - start_; }
  [[nodiscard]] std::size_t queued_fds() const noexcept { return fds_.size(); }
  // Bytes of memory the reader holds for buffered_bytes(); 0 when none are buffered.
  [[nodiscard]] std::size_t buffer_capacity() const noexcept { return buffer_.capacity(); }

  // Test seam: feed bytes and fds as if they had been received.
  void feed(std::span<const std::byte> bytes, std::vector<UniqueFd> fds);

 private:
  void fail(DecodeError e);
  void append(std::span<const std::byte> bytes);
  void shrink_to_held();

  std::vector<std::byte> buffer_;  // capacity 0 whenever nothing is buffered
  std::size_t start_ = 0;          // first unconsumed byte of buffer_
  std::vector<UniqueFd> fds_;      // in arrival order; capacity 0 whenever none is queued
  DecodeError error_ = DecodeError::none;
};

}  // namespace parker::protocol
