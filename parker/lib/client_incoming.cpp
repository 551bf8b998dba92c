// parker::Client — what comes from parker: reading frames and handing each message to the
// program's callbacks. Records that carry fds (WAKE, REJECTED) are always delivered in full,
// even if a callback closes the client halfway: those fds are the program's clients.
#include <cerrno>
#include <limits>

#include "parker/client.hpp"

namespace parker {
namespace {
// Reads per on_readable() call (64 KiB each): enough to drain a busy socket, bounded so one
// chatty parker cannot starve the rest of the loop (the poller calls again: level-triggered).
constexpr int kMaxReadsPerCall = 16;
}  // namespace

void Client::on_readable() {
  if (!socket_) return;
  const std::uint64_t generation = generation_;
  for (int reads = 0; reads < kMaxReadsPerCall; ++reads) {
    Error e = reader_.read_from(socket_.get());
    if (e.is(EAGAIN)) return;
    if (e.failed()) {
      // ECONNRESET: parker closed (any whole frame before the end was handled last round).
      // kErrControlTruncated: we are out of fds and the kernel dropped some; the stream can
      // no longer be trusted to match fds to records.
      disconnect(e);
      return;
    }
    while (auto frame = reader_.next()) {
      dispatch(*frame);
      if (generation_ != generation) return;  // disconnected or closed by what we just did
    }
    if (reader_.error() != protocol::DecodeError::none) {
      disconnect(Error{EPROTO});
      return;
    }
  }
}

void Client::dispatch(protocol::Frame& frame) {
  protocol::Message& message = frame.message;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::welcome: handle_welcome(std::get<protocol::Welcome>(message)); return;
    case protocol::MessageType::wake: handle_wake(std::get<protocol::Wake>(message), frame.fds); return;
    case protocol::MessageType::rejected: handle_rejected(std::get<protocol::Rejected>(message), frame.fds); return;
    case protocol::MessageType::closed: handle_closed(std::get<protocol::Closed>(message)); return;
    case protocol::MessageType::error: handle_error(std::get<protocol::ErrorMessage>(message)); return;
    case protocol::MessageType::credit: handle_credit(std::get<protocol::Credit>(message)); return;
    case protocol::MessageType::stats_reply:
    case protocol::MessageType::list_reply: return;  // we never ask; harmless
    case protocol::MessageType::hello:
    case protocol::MessageType::park:
    case protocol::MessageType::recall:
    case protocol::MessageType::drop:
    case protocol::MessageType::stats:
    case protocol::MessageType::list: break;
  }
  // A message only owners send: whatever is at the other end is not parker.
  disconnect(Error{EPROTO});
}

void Client::handle_welcome(const protocol::Welcome& welcome) {
  if (state_ != State::waiting || welcome.major != protocol::kVersionMajor) {
    disconnect(Error{EPROTO});  // a second WELCOME, or a parker speaking another major version
    return;
  }
  welcome_ = welcome;
  credit_ = welcome.credit;
  state_ = State::ready;
  next_delay_ = options_.reconnect_min;
  arm_timer(std::nullopt);
  if (callbacks_.on_connected) callbacks_.on_connected(welcome_);
}

void Client::handle_wake(protocol::Wake& wake, std::vector<UniqueFd>& fds) {
  for (std::size_t i = 0; i < wake.records.size(); ++i) {
    protocol::WakeRecord& record = wake.records[i];
    WokenConnection woken{std::move(fds[i]), record.id, std::move(record.blob), record.reason};
    if (callbacks_.on_wake) callbacks_.on_wake(std::move(woken));
  }
}

void Client::handle_rejected(const protocol::Rejected& rejected, std::vector<UniqueFd>& fds) {
  for (std::size_t i = 0; i < rejected.records.size(); ++i) {
    const protocol::RejectRecord& record = rejected.records[i];
    RejectedPark park{std::move(fds[i]), record.id, record.reason, record.blob};
    if (callbacks_.on_rejected) callbacks_.on_rejected(std::move(park));
  }
}

void Client::handle_closed(const protocol::Closed& closed) {
  const std::uint64_t generation = generation_;
  for (const protocol::CloseRecord& record : closed.records) {
    if (!callbacks_.on_closed || generation_ != generation) return;
    callbacks_.on_closed(record.id, record.reason);
  }
}

void Client::handle_error(const protocol::ErrorMessage& error) {
  const std::uint64_t generation = generation_;
  if (callbacks_.on_error) callbacks_.on_error(error);
  if (error.fatal && generation_ == generation) disconnect(Error{ECONNABORTED});
}

void Client::handle_credit(const protocol::Credit& credit) {
  std::uint64_t total = std::uint64_t{credit_} + credit.grant;
  credit_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(total, std::numeric_limits<std::uint32_t>::max()));
  if (callbacks_.on_credit) callbacks_.on_credit(credit_);
}

}  // namespace parker
