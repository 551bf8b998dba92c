#include "raw_session.hpp"

#include <algorithm>
#include <cerrno>

#include "parker/protocol.hpp"
#include "parker/unix_socket.hpp"

namespace parker::bench {
namespace {
constexpr int kMaxReadsPerCall = 16;  // as parker::Client: bounded, the poller calls again
}  // namespace

Error RawSession::connect(std::string_view path, std::string_view pool) {
  if (socket_) return Error{EISCONN};
  auto connected = connect_unix(path, 0, /*nonblocking=*/true);
  if (!connected.ok()) return connected.error;
  socket_ = std::move(connected.value);
  push(protocol::Hello{protocol::kVersionMajor, minor_, std::string(pool)});
  write_out();
  return {};
}

Error RawSession::park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& /*options*/) {
  if (!connected()) return Error{ENOTCONN};
  if (!fd) return Error{EBADF};
  if (credit_ == 0) return Error{ENOBUFS};
  --credit_;
  queued_parks_.push_back({{id, 0, 0, std::string(blob)}, std::move(fd)});
  return {};
}

Error RawSession::recall(std::uint64_t id) {
  if (!connected()) return Error{ENOTCONN};
  queued_recalls_.push_back(id);
  return {};
}

void RawSession::push(const protocol::Message& message, std::vector<UniqueFd> fds, std::vector<int> lent) {
  OutgoingMessage out;
  protocol::encode(message, out.bytes);
  out.fds = std::move(fds);
  out.lent_fds = std::move(lent);
  send_queue_.push(std::move(out));
}

void RawSession::flush() {
  if (!socket_) return;
  // The ACK first, as the client library does: a connection parked again below must not
  // still be unacknowledged.
  if (exactly_once() && wakes_received_ != ack_sent_) {
    ack_sent_ = wakes_received_;
    push(protocol::Ack{ack_sent_});
  }
  for (std::size_t at = 0; at < queued_parks_.size(); at += protocol::kMaxRecordsPerFrame) {
    const std::size_t end = std::min(queued_parks_.size(), at + protocol::kMaxRecordsPerFrame);
    protocol::Park park;
    std::vector<UniqueFd> fds;
    std::vector<int> lent;
    for (std::size_t i = at; i < end; ++i) {
      Queued& q = queued_parks_[i];
      if (exactly_once()) {
        lent.push_back(q.fd.get());  // ours until PARKED covers it
        unconfirmed_.push_back({++parks_sent_, q.record.id, std::move(q.fd)});
      } else {
        fds.push_back(std::move(q.fd));  // closed once written: parker has its own
      }
      park.records.push_back(std::move(q.record));
    }
    push(park, std::move(fds), std::move(lent));
  }
  queued_parks_.clear();
  if (!queued_recalls_.empty()) {
    push(protocol::Recall{std::move(queued_recalls_)});
    queued_recalls_.clear();
  }
  write_out();
  // As parker::Client::flush(): read the confirmations every 256 parks sent, so that a tight
  // park loop closes its copies while they are warm (the protocol's cost, not the loop's).
  if (exactly_once() && parks_sent_ - parks_sent_at_read_ >= Client::kReadAfterParks) {
    parks_sent_at_read_ = parks_sent_;
    on_readable();
  }
}

void RawSession::write_out() {
  if (!socket_ || send_queue_.empty()) return;
  Error e = send_queue_.flush(socket_.get());
  if (e.failed() && !e.is(EAGAIN)) fail(e);
}

void RawSession::on_readable() {
  for (int reads = 0; reads < kMaxReadsPerCall && socket_; ++reads) {
    Error e = reader_.read_from(socket_.get());
    if (e.is(EAGAIN)) return;
    if (e.failed()) return fail(e);
    while (socket_) {
      auto frame = reader_.next();
      if (!frame) break;
      dispatch(*frame);
    }
    if (reader_.error() != protocol::DecodeError::none) return fail(Error{EPROTO});
  }
}

void RawSession::dispatch(protocol::Frame& frame) {
  protocol::Message& m = frame.message;
  if (auto* w = std::get_if<protocol::Welcome>(&m)) {
    if (welcomed_ || w->major != protocol::kVersionMajor || w->minor > minor_) return fail(Error{EPROTO});
    welcomed_ = true;
    welcome_minor_ = w->minor;
    credit_ = w->credit;
    if (callbacks_.on_connected) callbacks_.on_connected(*w);
  } else if (auto* c = std::get_if<protocol::Credit>(&m)) {
    credit_ += c->grant;
    if (callbacks_.on_credit) callbacks_.on_credit(credit_);
  } else if (auto* wake = std::get_if<protocol::Wake>(&m)) {
    for (std::size_t i = 0; i < wake->records.size(); ++i) {
      auto& r = wake->records[i];
      WokenConnection woken{std::move(frame.fds[i]), r.id, std::move(r.blob), r.reason, ++wakes_received_};
      if (callbacks_.on_wake) callbacks_.on_wake(std::move(woken));
    }
  } else if (auto* rejected = std::get_if<protocol::Rejected>(&m)) {
    for (std::size_t i = 0; i < rejected->records.size(); ++i) {
      auto& r = rejected->records[i];
      auto it = std::find_if(unconfirmed_.begin(), unconfirmed_.end(), [&](const Unconfirmed& u) { return u.id == r.id; });
      if (it != unconfirmed_.end()) unconfirmed_.erase(it);  // parker sent its copy back
      if (callbacks_.on_rejected) callbacks_.on_rejected(RejectedPark{std::move(frame.fds[i]), r.id, r.reason, r.blob});
    }
  } else if (auto* closed = std::get_if<protocol::Closed>(&m)) {
    for (const auto& r : closed->records) {
      if (callbacks_.on_closed) callbacks_.on_closed(r.id, r.reason);
    }
  } else if (auto* parked = exactly_once() ? std::get_if<protocol::Parked>(&m) : nullptr) {
    while (!unconfirmed_.empty() && unconfirmed_.front().seq <= parked->parks) {
      std::uint64_t id = unconfirmed_.front().id;
      unconfirmed_.pop_front();  // parker has it: our copy closes
      if (callbacks_.on_parked) callbacks_.on_parked(id);
    }
  } else if (auto* reclaim = exactly_once() ? std::get_if<protocol::Reclaim>(&m) : nullptr) {
    std::uint32_t given = std::min(reclaim->wanted, credit_);
    credit_ -= given;
    push(protocol::CreditReturn{given});
    write_out();
  } else if (auto* error = std::get_if<protocol::ErrorMessage>(&m)) {
    if (callbacks_.on_error) callbacks_.on_error(*error);
    if (error->fatal) fail(Error{ECONNABORTED});
  } else {
    fail(Error{EPROTO});  // not a message parker sends on this version
  }
}

// The session is over (no reconnect): every park still ours comes back, as the library does.
void RawSession::fail(Error why) {
  if (!socket_) return;
  socket_.reset();
  welcomed_ = false;
  credit_ = 0;
  std::vector<RejectedPark> back;
  for (Unconfirmed& u : unconfirmed_) back.push_back({std::move(u.fd), u.id, std::nullopt, {}});
  unconfirmed_.clear();
  for (OutgoingMessage& message : send_queue_.take_unsent()) {
    for (UniqueFd& fd : message.fds) back.push_back({std::move(fd), 0, std::nullopt, {}});
  }
  send_queue_.clear();
  for (Queued& q : queued_parks_) back.push_back({std::move(q.fd), q.record.id, std::nullopt, std::move(q.record.blob)});
  queued_parks_.clear();
  if (callbacks_.on_disconnected) callbacks_.on_disconnected(why, std::chrono::milliseconds(0));
  for (RejectedPark& park : back) {
    if (callbacks_.on_rejected) callbacks_.on_rejected(std::move(park));
  }
}

}  // namespace parker::bench
