#include "control_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "daemon.hpp"
#include "pool.hpp"

namespace parker::daemon {

using protocol::ErrorCode;
using protocol::RejectReason;

namespace {

// Above this much queued output parker stops reading the peer and encoding its wakes, so
// that a peer that does not read costs bounded memory (wakes wait as records instead).
constexpr std::size_t kOutputHighWater = 4u << 20;
// Reads per readiness event, so that one busy peer does not starve the others.
constexpr int kReadsPerEvent = 16;
// A CREDIT frame is sent once the deficit is at least this many records (or credit is 0).
constexpr std::uint32_t kMinCreditGrant = 64;
// Bytes per WAKE frame (unless one record alone is bigger). A frame's fds leave parker with
// its first byte, long before a big frame's last byte: were the owner to die meanwhile,
// every fd of the frame would die in its socket buffer. Small frames keep the fds in
// flight close to what the socket buffer holds; with small blobs a frame still carries
// all 253 records.
constexpr std::size_t kMaxWakeFrameBytes = 256u << 10;
// CLOSED records per frame (9 bytes each: far below kMaxFrameBody).
constexpr std::size_t kClosedPerFrame = 65536;

ErrorCode error_code_for(protocol::DecodeError e) {
  switch (e) {
    case protocol::DecodeError::fd_mismatch:
    case protocol::DecodeError::fd_count_invalid:
    case protocol::DecodeError::record_count:
      return ErrorCode::fd_mismatch;
    default:
      return ErrorCode::bad_frame;
  }
}

protocol::MessageType frame_type(const OutgoingMessage& m) {
  return static_cast<protocol::MessageType>(static_cast<unsigned>(m.bytes[4]) |
                                            static_cast<unsigned>(m.bytes[5]) << 8);
}

}  // namespace

ControlSession::ControlSession(Daemon& daemon, UniqueFd fd, PeerCredentials peer, std::uint64_t id)
    : daemon_(daemon), fd_(std::move(fd)), peer_(peer), id_(id) {}

ControlSession::~ControlSession() = default;

Error ControlSession::start() {
  if (int rc = uv_poll_init(daemon_.loop(), &poll_, fd_.get()); rc != 0) return Error{-rc};
  poll_.data = this;
  started_ = true;
  update_poll();
  return {};
}

// ---- input ---------------------------------------------------------------------------------

void ControlSession::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* self = static_cast<ControlSession*>(handle->data);
  if (self->closed()) return;
  if (status < 0) {
    spdlog::debug("session {}: socket error: {}", self->id_, uv_strerror(status));
    self->close();
    return;
  }
  if ((events & UV_WRITABLE) != 0) self->pump();
  if ((events & UV_READABLE) != 0 && !self->closed()) self->read_input();
}

void ControlSession::read_input() {
  for (int round = 0; round < kReadsPerEvent && !closed() && !input_paused(); ++round) {
    Error e = reader_.read_from(fd_.get());
    if (e.is(EAGAIN)) break;
    if (e.is(kErrControlTruncated)) {
      fail(ErrorCode::fd_mismatch, "fds were truncated in transit (MSG_CTRUNC)");
      return;
    }
    if (e.failed()) {
      spdlog::debug("session {}: peer gone: {}", id_, describe(e));
      close();
      return;
    }
    while (auto frame = reader_.next()) {
      handle(*frame);
      if (closed()) return;
    }
    if (reader_.error() != protocol::DecodeError::none) {
      fail(error_code_for(reader_.error()),
           fmt::format("malformed frame: {}", protocol::to_string(reader_.error())));
      return;
    }
  }
  update_poll();
}

void ControlSession::handle(protocol::Frame& frame) {
  std::visit([&](auto& message) { on_message(message, frame.fds); }, frame.message);
}

template <class Other>
void ControlSession::on_message(Other& m, std::vector<UniqueFd>& /*fds*/) {
  fail(ErrorCode::bad_frame, fmt::format("parker does not accept {} messages",
                                         protocol::to_string(protocol::type_of(protocol::Message{m}))));
}

void ControlSession::on_message(protocol::Hello& m, std::vector<UniqueFd>& /*fds*/) {
  if (state_ != State::awaiting_hello) {
    fail(ErrorCode::hello_required, "HELLO was already sent on this connection");
    return;
  }
  if (daemon_.shutting_down()) {
    fail(ErrorCode::shutting_down, "parker is shutting down");
    return;
  }
  if (m.major != protocol::kVersionMajor) {
    fail(ErrorCode::bad_version, fmt::format("parker speaks protocol {}.{}, not {}.{}", protocol::kVersionMajor,
                                             protocol::kVersionMinor, m.major, m.minor));
    return;
  }
  protocol::Welcome welcome;
  welcome.max_blob = daemon_.config().max_blob;
  welcome.max_parked_per_owner = daemon_.config().max_parked_per_owner;
  welcome.session_id = id_;
  if (m.pool.empty()) {
    state_ = State::observer;
    send(welcome);
    spdlog::debug("session {}: observer (uid {})", id_, peer_.uid);
    return;
  }
  if (!protocol::valid_pool_name(m.pool)) {
    fail(ErrorCode::bad_pool_name, "pool names are 1-64 bytes of [A-Za-z0-9._-]");
    return;
  }
  Pool* pool = daemon_.pool_for(m.pool, peer_.uid);
  if (pool == nullptr) {
    spdlog::warn("refused uid {} (pid {}): pool '{}' belongs to another uid", peer_.uid, peer_.pid, m.pool);
    fail(ErrorCode::pool_taken, fmt::format("pool '{}' belongs to another uid", m.pool));
    return;
  }
  state_ = State::owner;
  pool_ = pool;
  daemon_.session_became_owner();
  credit_ = daemon_.capacity().grant(daemon_.credit_window());
  welcome.credit = credit_;
  welcome.parked_in_pool = static_cast<std::uint32_t>(pool->parked());
  send(welcome);
  spdlog::debug("session {}: owner of pool '{}' (uid {}, pid {}), credit {}", id_, m.pool, peer_.uid, peer_.pid,
                credit_);
  pool->attach(*this);  // held wakes and CLOSED records follow the WELCOME
}

void ControlSession::reject_all(protocol::Park& m, std::vector<UniqueFd>& fds, RejectReason reason) {
  protocol::Rejected rejected;
  for (auto& r : m.records) {
    rejected.records.push_back({r.id, reason, std::move(r.blob)});
    daemon_.counters().count(reason);
  }
  daemon_.capacity().fds_arrived(0, fds.size());
  send(rejected, std::move(fds));
}

void ControlSession::on_message(protocol::Park& m, std::vector<UniqueFd>& fds) {
  if (state_ == State::awaiting_hello) {
    reject_all(m, fds, RejectReason::no_credit);
    fail(ErrorCode::hello_required, "the first message must be HELLO");
    return;
  }
  if (state_ == State::observer) {
    reject_all(m, fds, RejectReason::no_credit);
    send_error(ErrorCode::not_owner, false, 0, "an observer session (empty pool) cannot park");
    return;
  }
  std::size_t n = m.records.size();
  std::size_t credited = std::min<std::size_t>(credit_, n);
  credit_ -= static_cast<std::uint32_t>(credited);
  daemon_.capacity().fds_arrived(credited, n - credited);

  protocol::Rejected rejected;
  std::vector<UniqueFd> returned;
  for (std::size_t i = 0; i < n; ++i) {
    std::optional<RejectReason> reason;
    if (i >= credited) {
      reason = RejectReason::no_credit;
    } else if (finishing_) {
      reason = RejectReason::shutting_down;
    } else {
      reason = pool_->park(m.records[i], fds[i]);
    }
    if (reason) {
      rejected.records.push_back({m.records[i].id, *reason, std::move(m.records[i].blob)});
      returned.push_back(std::move(fds[i]));
      daemon_.counters().count(*reason);
    } else {
      ++daemon_.counters().parks_total;
    }
  }
  if (!rejected.records.empty()) send(rejected, std::move(returned));
  daemon_.credit_changed();
}

void ControlSession::on_message(protocol::Recall& m, std::vector<UniqueFd>& /*fds*/) {
  if (state_ != State::owner) {
    if (state_ == State::awaiting_hello) return fail(ErrorCode::hello_required, "the first message must be HELLO");
    return send_error(ErrorCode::not_owner, false, 0, "an observer session cannot recall");
  }
  for (auto id : m.ids) {
    if (!pool_->recall(id)) send_error(ErrorCode::unknown_id, false, id, "not parked");
  }
}

void ControlSession::on_message(protocol::Drop& m, std::vector<UniqueFd>& /*fds*/) {
  if (state_ != State::owner) {
    if (state_ == State::awaiting_hello) return fail(ErrorCode::hello_required, "the first message must be HELLO");
    return send_error(ErrorCode::not_owner, false, 0, "an observer session cannot drop");
  }
  for (auto id : m.ids) {
    if (pool_->drop(id)) {
      queue_closed({id, protocol::CloseReason::dropped});
    } else {
      send_error(ErrorCode::unknown_id, false, id, "not parked");
    }
  }
}

void ControlSession::on_message(protocol::StatsRequest& /*m*/, std::vector<UniqueFd>& /*fds*/) {
  if (state_ == State::awaiting_hello) return fail(ErrorCode::hello_required, "the first message must be HELLO");
  send(protocol::StatsReply{daemon_.stats_text()});
}

void ControlSession::on_message(protocol::ListRequest& /*m*/, std::vector<UniqueFd>& /*fds*/) {
  if (state_ == State::awaiting_hello) return fail(ErrorCode::hello_required, "the first message must be HELLO");
  send(protocol::ListReply{daemon_.list_text()});
}

// ---- output --------------------------------------------------------------------------------

void ControlSession::send(const protocol::Message& message, std::vector<UniqueFd> fds) {
  OutgoingMessage out;
  protocol::encode(message, out.bytes);
  out.fds = std::move(fds);
  out_.push(std::move(out));
  daemon_.mark_dirty(*this);
}

void ControlSession::send_error(ErrorCode code, bool fatal, std::uint64_t id, std::string text) {
  daemon_.counters().count(code);
  send(protocol::ErrorMessage{code, fatal, id, std::move(text)});
}

void ControlSession::queue_wake(WakeItem item) {
  pending_wakes_.push_back(std::move(item));
  daemon_.mark_dirty(*this);
}

void ControlSession::queue_closed(protocol::CloseRecord record) {
  pending_closed_.push_back(record);
  daemon_.mark_dirty(*this);
}

void ControlSession::top_up_credit() {
  if (state_ != State::owner || finishing_) return;
  std::uint32_t window = daemon_.credit_window();
  if (credit_ >= window) return;
  std::uint32_t deficit = window - credit_;
  if (credit_ != 0 && deficit < kMinCreditGrant) return;
  std::uint32_t granted = daemon_.capacity().grant(deficit);
  if (granted == 0) return;
  credit_ += granted;
  send(protocol::Credit{granted});
}

void ControlSession::encode_pending() {
  // WAKE frames: up to 253 records, and up to kMaxWakeFrameBytes (kMaxFrameBody for a
  // single record with a huge blob).
  while (!pending_wakes_.empty() && out_.queued_bytes() < kOutputHighWater) {
    protocol::Wake wake;
    OutgoingMessage out;
    std::size_t body = 2;
    while (!pending_wakes_.empty() && wake.records.size() < protocol::kMaxRecordsPerFrame) {
      WakeItem& item = pending_wakes_.front();
      std::size_t size = protocol::encoded_size(item.record);
      if (!wake.records.empty() && body + size > kMaxWakeFrameBytes) break;
      body += size;
      wake.records.push_back(std::move(item.record));
      out.fds.push_back(std::move(item.fd));
      pending_wakes_.pop_front();
    }
    protocol::encode(wake, out.bytes);
    out_.push(std::move(out));
  }
  for (std::size_t at = 0; at < pending_closed_.size(); at += kClosedPerFrame) {
    std::size_t end = std::min(pending_closed_.size(), at + kClosedPerFrame);
    protocol::Closed closed;
    closed.records.assign(pending_closed_.begin() + static_cast<std::ptrdiff_t>(at),
                          pending_closed_.begin() + static_cast<std::ptrdiff_t>(end));
    OutgoingMessage out;
    protocol::encode(closed, out.bytes);
    out_.push(std::move(out));
  }
  pending_closed_.clear();
}

void ControlSession::pump() {
  if (closed() || !started_) return;
  for (;;) {
    encode_pending();
    if (finishing_ && pending_wakes_.empty() && !goodbye_queued_) {
      send_error(ErrorCode::shutting_down, true, 0, "parker is shutting down");
      goodbye_queued_ = true;
    }
    auto result = out_.flush(fd_.get());
    if (result.fds_sent != 0) daemon_.fds_released(result.fds_sent);
    if (result.error.is(EAGAIN)) break;
    if (result.error.failed()) {
      spdlog::debug("session {}: write failed: {}", id_, describe(result.error));
      close();
      return;
    }
    if (pending_wakes_.empty()) break;  // everything went
  }
  if (finishing_ && goodbye_queued_ && out_.empty()) {
    close();
    return;
  }
  update_poll();
}

// ---- lifecycle -----------------------------------------------------------------------------

bool ControlSession::input_paused() const noexcept { return out_.queued_bytes() >= kOutputHighWater; }

void ControlSession::update_poll() {
  if (closed() || !started_) return;
  int events = 0;
  if (!input_paused()) events |= UV_READABLE;
  if (!out_.empty()) events |= UV_WRITABLE;
  if (events == poll_events_) return;
  poll_events_ = events;
  if (events == 0) {
    uv_poll_stop(&poll_);
  } else {
    uv_poll_start(&poll_, events, on_poll);
  }
}

void ControlSession::finish() {
  if (closed() || finishing_) return;
  finishing_ = true;
  daemon_.mark_dirty(*this);
}

void ControlSession::fail(ErrorCode code, std::string text) {
  if (closed()) return;
  if (code == ErrorCode::not_allowed || code == ErrorCode::pool_taken) {
    ++daemon_.counters().refused_peers_total;
  } else {
    spdlog::debug("session {}: closing: {}: {}", id_, protocol::to_string(code), text);
  }
  rescue_wakes();
  send_error(code, true, 0, std::move(text));
  auto result = out_.flush(fd_.get());  // best effort: the peer may not be reading
  if (result.fds_sent != 0) daemon_.fds_released(result.fds_sent);
  close();
}

void ControlSession::rescue_wakes() {
  if (pool_ == nullptr) return;
  Pool* pool = pool_;
  pool->detach(*this);  // so the wakes cannot come back here
  pool_ = nullptr;
  std::vector<OutgoingMessage> unsent = out_.take_unsent();
  for (auto& m : unsent) {
    if (frame_type(m) != protocol::MessageType::wake) {
      out_.push(std::move(m));  // replies stay, in order, for a last flush
      continue;
    }
    auto decoded = protocol::decode(m.bytes, m.fds.size());
    auto* wake = std::get_if<protocol::Wake>(&decoded.message);
    if (decoded.status != protocol::DecodeStatus::ok || wake == nullptr) continue;  // cannot happen: we encoded it
    for (std::size_t i = 0; i < wake->records.size(); ++i) {
      pool->deliver(WakeItem{std::move(wake->records[i]), std::move(m.fds[i])});
    }
  }
  while (!pending_wakes_.empty()) {
    pool->deliver(std::move(pending_wakes_.front()));
    pending_wakes_.pop_front();
  }
  for (auto& record : pending_closed_) pool->deliver(record);
  pending_closed_.clear();
}

void ControlSession::close() {
  if (closed()) return;
  rescue_wakes();
  bool was_owner = state_ == State::owner;
  state_ = State::closed;
  if (credit_ != 0) {
    daemon_.capacity().return_credit(credit_);
    credit_ = 0;
    daemon_.credit_changed();
  }
  // What is still queued (refused fds of a peer that went away) is closed.
  if (std::size_t dropped = out_.clear(); dropped != 0) {
    daemon_.fds_released(dropped);
    for (std::size_t i = 0; i < dropped; ++i) daemon_.counters().count(protocol::CloseReason::owner_gone);
  }
  daemon_.session_closing(*this, was_owner);
  spdlog::debug("session {}: closed", id_);
  if (started_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_closed);  // stops the poll first
    fd_.reset();
  } else {
    fd_.reset();
  }
}

void ControlSession::on_closed(uv_handle_t* handle) noexcept {
  delete static_cast<ControlSession*>(handle->data);
}

}  // namespace parker::daemon
