// parker::Client — what comes from parker: reading frames and handing each message to the
// program's callbacks. Records that carry fds (WAKE, REJECTED) are always delivered in full,
// even if a callback closes the client halfway: those fds are the program's clients.
#include <algorithm>
#include <cerrno>
#include <limits>

#include "parker/client.hpp"

namespace parker {
namespace {
// Reads per on_readable() call (64 KiB each): enough to drain a busy socket, bounded so one
// chatty parker cannot starve the rest of the loop (the poller calls again: level-triggered).
constexpr int kMaxReadsPerCall = 16;
}  // namespace

void Client::on_readable() { read_frames(kMaxReadsPerCall); }

// libuv stops watching a socket in error, so what parker sent before it went is read now, to
// the end: the read that finds nothing left reports the error (ECONNRESET) and ends the session.
void Client::on_socket_error(Error why) {
  if (!socket_) return;
  const std::uint64_t generation = generation_;
  read_frames(std::numeric_limits<int>::max());
  if (socket_ && generation_ == generation) disconnect(why, Ending::by_parker);  // not gone after all
}

void Client::read_frames(int max_reads) {
  if (!socket_) return;
  const std::uint64_t generation = generation_;
  for (int reads = 0; reads < max_reads; ++reads) {
    Error e = reader_.read_from(socket_.get());
    if (e.is(EAGAIN)) return;
    if (e.failed()) {
      // ECONNRESET: parker closed (any whole frame before the end was handled last round).
      // kErrControlTruncated: we are out of fds and the kernel dropped some; the stream can
      // no longer be trusted to match fds to records.
      disconnect(e, e.is(kErrControlTruncated) ? Ending::by_us : Ending::by_parker);
      return;
    }
    while (auto frame = reader_.next()) {
      dispatch(*frame);
      if (generation_ != generation) return;  // disconnected or closed by what we just did
    }
    if (reader_.error() != protocol::DecodeError::none) {
      disconnect(Error{EPROTO}, Ending::by_us);
      return;
    }
  }
}

void Client::dispatch(protocol::Frame& frame) {
  protocol::Message& message = frame.message;
  switch (protocol::type_of(message)) {
    case protocol::MessageType::welcome: handle_welcome(std::get<protocol::Welcome>(message)); return;
    case protocol::MessageType::wake: handle_wake(std::get<protocol::Wake>(message), frame.fds); return;
    case protocol::MessageType::wake_unsent:
      if (exactly_once()) return handle_wake(std::get<protocol::Wake>(message), frame.fds);
      break;
    case protocol::MessageType::write_result:
      if (exactly_once()) return handle_write_result(std::get<protocol::WriteResult>(message));
      break;
    case protocol::MessageType::rejected: handle_rejected(std::get<protocol::Rejected>(message), frame.fds); return;
    case protocol::MessageType::closed: handle_closed(std::get<protocol::Closed>(message)); return;
    case protocol::MessageType::error: handle_error(std::get<protocol::ErrorMessage>(message)); return;
    case protocol::MessageType::credit: handle_credit(std::get<protocol::Credit>(message)); return;
    case protocol::MessageType::stats_reply:
    case protocol::MessageType::list_reply: return;  // we never ask; harmless
    case protocol::MessageType::parked:
      if (exactly_once()) return handle_parked(std::get<protocol::Parked>(message));
      break;
    case protocol::MessageType::inventory_reply:
      if (exactly_once()) {
        if (callbacks_.on_inventory) callbacks_.on_inventory(std::get<protocol::InventoryReply>(message));
        return;
      }
      break;
    case protocol::MessageType::goodbye:
      if (exactly_once()) return handle_goodbye();
      break;
    case protocol::MessageType::reclaim:
      if (exactly_once()) return handle_reclaim(std::get<protocol::Reclaim>(message));
      break;
    case protocol::MessageType::ack:
    case protocol::MessageType::inventory:
    case protocol::MessageType::credit_return:
    case protocol::MessageType::take_over:  // parker to parker only
    case protocol::MessageType::handover:
    case protocol::MessageType::handover_end:
    case protocol::MessageType::taken:
    case protocol::MessageType::write:
    case protocol::MessageType::keepalive_rules:
    case protocol::MessageType::keep_update:  // parker to its keeper only
    case protocol::MessageType::keep_control:
    case protocol::MessageType::counters:  // parker to parker only (1.2)
    case protocol::MessageType::handover_rules:
    case protocol::MessageType::hello:
    case protocol::MessageType::park:
    case protocol::MessageType::recall:
    case protocol::MessageType::drop:
    case protocol::MessageType::stats:
    case protocol::MessageType::list: break;
  }
  // A message only owners send (or one of a version not negotiated): not parker's.
  disconnect(Error{EPROTO}, Ending::by_us);
}

void Client::handle_welcome(const protocol::Welcome& welcome) {
  if (state_ != State::waiting || welcome.major != protocol::kVersionMajor || welcome.minor > options_.max_minor) {
    // A second WELCOME, or a parker speaking another major version (or a minor we never offered).
    disconnect(Error{EPROTO}, Ending::by_us);
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
  const std::uint64_t generation = generation_;
  if (state_ == State::leaving) {
    // Not adopted and not acknowledged: parker still has them and hands them to another
    // session of the pool when we are gone. Ours close with `fds`.
    wakes_received_ += wake.records.size();
    return;
  }
  bool acked = false;
  for (std::size_t i = 0; i < wake.records.size(); ++i) {
    protocol::WakeRecord& record = wake.records[i];
    WokenConnection woken{std::move(fds[i]), record.id, std::move(record.blob), record.reason, ++wakes_received_,
                          std::move(record.unsent)};
    // Counted as adopted before the callback runs: a callback that close()s the client has
    // the fd, and close() tells parker so.
    if (options_.auto_acknowledge) {
      acknowledged_ = wakes_received_;
      acked = true;
    }
    if (callbacks_.on_wake) callbacks_.on_wake(std::move(woken));
    if (generation_ != generation) {
      // The callback closed or replaced the session: the rest are still handed over (they are
      // the program's clients) but cannot be acknowledged on a session that is gone.
      acked = false;
    }
  }
  if (acked && loop_ != nullptr) loop_->flush_needed();
}

void Client::handle_rejected(const protocol::Rejected& rejected, std::vector<UniqueFd>& fds) {
  for (std::size_t i = 0; i < rejected.records.size(); ++i) {
    const protocol::RejectRecord& record = rejected.records[i];
    // 1.1: our copy of an unconfirmed park closes; the program gets parker's.
    auto it = std::find_if(unconfirmed_.begin(), unconfirmed_.end(),
                           [&](const UnconfirmedPark& u) { return u.id == record.id; });
    if (it != unconfirmed_.end()) unconfirmed_.erase(it);
    RejectedPark park{std::move(fds[i]), record.id, record.reason, record.blob};
    if (callbacks_.on_rejected) callbacks_.on_rejected(std::move(park));
  }
}

void Client::handle_parked(const protocol::Parked& parked) {
  const std::uint64_t generation = generation_;
  std::vector<std::uint64_t> confirmed;
  while (!unconfirmed_.empty() && unconfirmed_.front().seq <= parked.parks) {
    confirmed.push_back(unconfirmed_.front().id);
    // Parker has it: our copy closes at the next flush, after the parks it lets us send.
    confirmed_copies_.push_back(std::move(unconfirmed_.front().fd));
    unconfirmed_.pop_front();
  }
  if (loop_ != nullptr && !confirmed.empty()) loop_->flush_needed();
  for (std::uint64_t id : confirmed) {
    if (!callbacks_.on_parked || generation_ != generation) return;
    callbacks_.on_parked(id);
  }
}

void Client::handle_reclaim(const protocol::Reclaim& reclaim) {
  std::uint32_t given = std::min(reclaim.wanted, credit_);
  credit_ -= given;
  send_now(protocol::CreditReturn{given});
}

void Client::handle_goodbye() {
  if (state_ != State::leaving) {
    disconnect(Error{EPROTO}, Ending::by_us);
    return;
  }
  // Everything we sent was confirmed or refused before this frame, and wakes after leave()
  // were left to parker: the session ends as if parker had closed it, and leaving is done.
  disconnect(Error{}, Ending::by_parker);
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
  // 1.3: parker ends the session and says how far it got with our writes.
  if (error.fatal && welcome_.minor >= protocol::kMinorWritesHandled) parker_handled_writes_ = error.id;
  if (callbacks_.on_error) callbacks_.on_error(error);
  if (error.fatal && generation_ == generation) disconnect(Error{ECONNABORTED});
}

void Client::handle_credit(const protocol::Credit& credit) {
  std::uint64_t total = std::uint64_t{credit_} + credit.grant;
  credit_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(total, std::numeric_limits<std::uint32_t>::max()));
  if (callbacks_.on_credit) callbacks_.on_credit(credit_);
}

}  // namespace parker
