#include "parker/frame_reader.hpp"

#include <cerrno>

#include "parker/fd_passing.hpp"

namespace parker::protocol {
namespace {
constexpr std::size_t kReadChunk = 64 * 1024;

std::uint16_t declared_fds(std::span<const std::byte> header) {
  return static_cast<std::uint16_t>(static_cast<unsigned>(header[6]) | static_cast<unsigned>(header[7]) << 8);
}
}  // namespace

Error FrameReader::read_from(int socket) {
  if (error_ != DecodeError::none) return Error{EPROTO};
  compact();
  std::size_t used = buffer_.size();
  buffer_.resize(used + kReadChunk);
  std::vector<UniqueFd> arrived;
  auto got = receive_with_fds(socket, std::span(buffer_).subspan(used), arrived, kMaxRecordsPerFrame);
  buffer_.resize(used + got.value);
  if (!got.ok()) return got.error;
  if (got.value == 0) return Error{ECONNRESET};
  for (auto& fd : arrived) fds_.push_back(std::move(fd));
  return {};
}

void FrameReader::feed(std::span<const std::byte> bytes, std::vector<UniqueFd> fds) {
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  for (auto& fd : fds) fds_.push_back(std::move(fd));
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
    if (fds_.size() > allowed) fail(DecodeError::fd_mismatch);
    return std::nullopt;
  }
  // The same rule for a whole frame with nothing after it: fds beyond its own cannot belong
  // to a later frame, so refuse the frame rather than act on a peer already proven wrong.
  if (r.consumed == pending.size() && fds_.size() > r.fds) {
    fail(DecodeError::fd_mismatch);
    return std::nullopt;
  }
  Frame frame{std::move(r.message), {}};
  frame.fds.reserve(r.fds);
  for (std::size_t i = 0; i < r.fds; ++i) {
    frame.fds.push_back(std::move(fds_.front()));
    fds_.pop_front();
  }
  start_ += r.consumed;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return frame;
}

void FrameReader::fail(DecodeError e) {
  error_ = e;
  fds_.clear();  // closes every fd received on this connection and not yet handed out
  buffer_.clear();
  start_ = 0;
}

void FrameReader::compact() {
  if (start_ == 0) return;
  buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
  start_ = 0;
}

}  // namespace parker::protocol
