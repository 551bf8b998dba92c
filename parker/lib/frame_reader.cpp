#include "parker/frame_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "parker/fd_passing.hpp"

namespace parker::protocol {
namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
// A buffer is reallocated to fit what it holds once it is more than twice that and the
// difference is worth a malloc.
constexpr std::size_t kShrinkSlack = 256;

std::uint16_t declared_fds(std::span<const std::byte> header) {
  return static_cast<std::uint16_t>(static_cast<unsigned>(header[6]) | static_cast<unsigned>(header[7]) << 8);
}

// Header plus body, as the header declares (decode() refuses what is over the limit).
std::size_t declared_frame_size(std::span<const std::byte> header) {
  std::uint32_t body = 0;
  for (int i = 3; i >= 0; --i) body = body << 8 | static_cast<std::uint32_t>(header[static_cast<std::size_t>(i)]);
  return kHeaderSize + std::min<std::size_t>(body, kMaxFrameBody);
}

// Where recvmsg() puts what it reads, before the bytes are copied to the reader that needs
// them: one per thread (the daemon is single-threaded; client library users may read from
// several threads, each with its own readers). Allocated on first use, kept for the thread.
std::span<std::byte> read_scratch() {
  thread_local std::vector<std::byte> scratch;
  if (scratch.empty()) scratch.resize(kReadChunk);
  return scratch;
}

template <class T>
void release(std::vector<T>& v) {
  std::vector<T>().swap(v);  // clear() and `= {}` keep the capacity
}
}  // namespace

Error FrameReader::read_from(int socket) {
  if (error_ != DecodeError::none) return Error{EPROTO};
  std::span<std::byte> scratch = read_scratch();
  std::vector<UniqueFd> arrived;
  auto got = receive_with_fds(socket, scratch, arrived, kMaxRecordsPerFrame);
  append(scratch.first(got.value));  // bytes consumed by a truncated read are kept, as before
  if (!got.ok()) return got.error;
  if (got.value == 0) return Error{ECONNRESET};
  if (fds_.empty()) {
    fds_ = std::move(arrived);
  } else {
    for (auto& fd : arrived) fds_.push_back(std::move(fd));
  }
  return {};
}

void FrameReader::feed(std::span<const std::byte> bytes, std::vector<UniqueFd> fds) {
  append(bytes);
  for (auto& fd : fds) fds_.push_back(std::move(fd));
}

// Puts `bytes` after the unconsumed ones, at the start of buffer_. While a frame is arriving
// in pieces the buffer grows geometrically (at least doubling what it holds), never beyond
// the frame's declared size: a 16 MiB frame read 64 KiB at a time costs O(n) copying in
// all, and a peer that stops sending mid-frame costs at most twice what it sent.
void FrameReader::append(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  std::size_t held = buffer_.size() - start_;
  std::size_t need = held + bytes.size();
  std::size_t want = need;
  if (held >= kHeaderSize) {
    std::size_t frame = declared_frame_size(std::span(buffer_).subspan(start_));
    if (frame > need) want = std::min(frame, std::max(need, 2 * held));
  }
  if (buffer_.capacity() >= need && buffer_.capacity() <= 2 * want) {
    if (start_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + start_, held);
      buffer_.resize(held);
      start_ = 0;
    }
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    return;
  }
  std::vector<std::byte> grown;
  grown.reserve(want);
  grown.insert(grown.end(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_), buffer_.end());
  grown.insert(grown.end(), bytes.begin(), bytes.end());
  buffer_.swap(grown);
  start_ = 0;
}

// Called when the buffer holds no whole frame: frees it if empty, else reallocates it to
// fit the unfinished frame's bytes when it is much bigger than them (e.g. a 64 KiB read of
// whole frames followed by the start of the next one).
void FrameReader::shrink_to_held() {
  std::size_t held = buffer_.size() - start_;
  if (held == 0) {
    release(buffer_);
    start_ = 0;
    return;
  }
  if (buffer_.capacity() <= 2 * held || buffer_.capacity() - held <= kShrinkSlack) return;
  std::vector<std::byte> fitted(buffer_.begin() + static_cast<std::ptrdiff_t>(start_), buffer_.end());
  buffer_.swap(fitted);
  start_ = 0;
}

std::optional<Frame> FrameReader::next() {
  if (error_ != DecodeError::none) return std::nullopt;
  std::span<const std::byte> pending(buffer_.data() + start_, buffer_.size() - start_);
  DecodeResult r = decode(pending, fds_.size());
  if (r.status == DecodeStatus::error) {
    fail(r.error);
    return std::nullopt;
  }
  if (r.status == DecodeStatus::need_more) {
    // fds arrive with the first byte of their frame, so more fds than the frame in progress
    // declares (or any, between frames) can only come from a lying peer.
    std::size_t allowed = pending.empty() ? 0
                          : pending.size() < kHeaderSize ? kMaxRecordsPerFrame
                                                         : declared_fds(pending);
    if (fds_.size() > allowed) {
      fail(DecodeError::fd_mismatch);
    } else {
      shrink_to_held();
    }
    return std::nullopt;
  }
  // The same rule for a whole frame with nothing after it: fds beyond its own cannot belong
  // to a later frame, so refuse the frame rather than act on a peer already proven wrong.
  if (r.consumed == pending.size() && fds_.size() > r.fds) {
    fail(DecodeError::fd_mismatch);
    return std::nullopt;
  }
  Frame frame{std::move(r.message), {}};
  if (r.fds == 0) {
    // most frames carry none
  } else if (r.fds == fds_.size()) {
    frame.fds = std::exchange(fds_, {});  // the queue is all this frame's: hand it over whole
  } else {
    auto end = fds_.begin() + static_cast<std::ptrdiff_t>(r.fds);
    frame.fds.assign(std::make_move_iterator(fds_.begin()), std::make_move_iterator(end));
    fds_.erase(fds_.begin(), end);  // the rest rides on a frame still in the buffer
  }
  start_ += r.consumed;
  if (start_ == buffer_.size()) {
    release(buffer_);
    start_ = 0;
  }
  return frame;
}

void FrameReader::fail(DecodeError e) {
  error_ = e;
  release(fds_);  // closes every fd received on this connection and not yet handed out
  release(buffer_);
  start_ = 0;
}

}  // namespace parker::protocol
