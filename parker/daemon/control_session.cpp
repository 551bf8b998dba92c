#include "control_session.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "keeper_link.hpp"
#include "pool.hpp"

namespace parker::daemon {

using protocol::ErrorCode;
using protocol::MessageType;
using protocol::RejectReason;

namespace {

// Above this much queued output parker stops reading the peer and encoding its wakes, so
// that a peer that does not read costs bounded memory (wakes wait as records instead).
constexpr std::size_t kOutputHighWater = 4u << 20;
// Refused fds on their way back above which parker stops reading the peer: one that sends
// beyond its credit and does not read its REJECTED frames cannot take parker's last slots.
constexpr std::size_t kReturnedFdsHighWater = 2 * protocol::kMaxRecordsPerFrame;
// A CREDIT frame is sent once the deficit is at least this many records (or credit is 0).
constexpr std::uint32_t kMinCreditGrant = 64;
// Bytes per WAKE frame (unless one record alone is bigger). On a 1.0 session a frame's fds
// leave parker with its first byte, long before a big frame's last byte: were the owner to
// die meanwhile, every fd of the frame would die in its socket buffer. Small frames keep
// the fds in flight close to what the socket buffer holds; with small blobs a frame still
// carries all 253 records. (On 1.1 sessions parker keeps its copies until ACK anyway.)
constexpr std::size_t kMaxWakeFrameBytes = 256u << 10;
// CLOSED records per frame (9 bytes each: far below kMaxFrameBody).
constexpr std::size_t kClosedPerFrame = 65536;
// INVENTORY_REPLY frames: at most this many bytes of records (one big blob may exceed it).
constexpr std::size_t kMaxInventoryFrameBytes = 256u << 10;

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

OutgoingFrame frame_of(const protocol::Message& message, std::vector<UniqueFd> fds = {}) {
  OutgoingFrame out;
  protocol::encode(message, out.bytes);
  out.fds = std::move(fds);
  return out;
}

}  // namespace

ControlSession::ControlSession(CoreContext& core, UniqueFd fd, PeerCredentials peer, std::uint64_t id)
    : core_(core), fd_(std::move(fd)), peer_(peer), id_(id), connected_at_(core.now()) {}

ControlSession::~ControlSession() = default;

Error ControlSession::start() {
  if (int rc = uv_poll_init(core_.loop, &poll_, fd_.get()); rc != 0) return Error{-rc};
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
    // POLLERR: the peer closed with frames of ours unread. What it wrote before that is still
    // in our socket (PARK frames whose fds it let go of, trusting us): read it, then end.
    spdlog::debug("session {}: socket error: {}", self->id_, uv_strerror(status));
    self->read_to_the_end();
    return;
  }
  if ((events & UV_WRITABLE) != 0) self->pump();
  if ((events & UV_READABLE) != 0 && !self->closed()) self->read_input();
}

// The peer is gone: everything it sent is in our socket already, and read_input() ends the
// session at the end of the stream (or on a fatal frame). Nobody reads what we answer from
// here on: its queries are not answered, and what else we queue is dropped as it comes
// (drop_unread_output) — only the wakes in it matter, and they go back to the pool when the
// session closes. So the output high-water mark cannot stop the reading short of a PARK
// the peer left (its fd is ours alone); only a full fd table does: what is left then closes.
void ControlSession::read_to_the_end() {
  read_input(kToTheEnd);
  if (!closed()) close(Ending::peer_gone);
}

// A question whose answer is all it causes: a gone peer's are not answered (a flood of
// them would only cost time).
bool ControlSession::is_query(protocol::MessageType type) noexcept {
  using protocol::MessageType;
  return type == MessageType::stats || type == MessageType::list || type == MessageType::inventory;
}

void ControlSession::drop_unread_output() { closed_unsent(out_.drop_all_but_deliveries()); }

// Fds of frames dropped unsent (refused parks of a peer that went away) were closed.
void ControlSession::closed_unsent(std::size_t fds) {
  if (fds == 0) return;
  core_.fds_released(fds);
  for (std::size_t i = 0; i < fds; ++i) core_.counters.count(protocol::CloseReason::owner_gone);
}

void ControlSession::read_input(int max_reads) {
  Capacity& capacity = core_.capacity;
  const bool to_the_end = max_reads == kToTheEnd;  // the peer is gone (read_to_the_end)
  const std::uint64_t write_targets_before = write_targets_;
  if (to_the_end) drop_unread_output();
  // Whole frames left in the reader by a pause come first, in order.
  if (!handle_buffered_frames(to_the_end)) return;
  for (int round = 0; round < max_reads && !closed() && !input_paused(); ++round) {
    if (!to_the_end && write_targets_ - write_targets_before >= kWriteTargetsPerEvent) break;
    if (!capacity.room_to_read()) {
      // Not one more fd into a full table: the kernel would truncate and lose them. They
      // wait in the peer's socket until fds leave parker (resume_input).
      if (!paused_for_room_) {
        spdlog::debug("session {}: paused: {} descriptor slots free", id_, capacity.free_slots());
        paused_for_room_ = true;
        core_.registry.paused_for_room(*this);
      }
      break;
    }
    Error e = reader_.read_from(fd_.get());
    sync_reader_fds();
    if (e.is(EAGAIN)) break;
    if (e.is(kErrControlTruncated)) {
      ++core_.counters.truncated_total;
      spdlog::warn("session {} (pid {}): fds truncated in transit (MSG_CTRUNC) and lost by the kernel: fd limit {}, "
                   "{} client fds held, {} in readers, {} sessions, {} free slots",
                   id_, peer_.pid, capacity.fd_limit(), capacity.client_fds(), capacity.reader_fds(),
                   capacity.sessions(), capacity.free_slots());
      fail(ErrorCode::fd_mismatch, "fds were truncated in transit (MSG_CTRUNC)");
      return;
    }
    if (e.failed()) {
      spdlog::debug("session {}: peer gone: {}", id_, describe(e));
      close(Ending::peer_gone);
      return;
    }
    if (!handle_buffered_frames(to_the_end)) return;
  }
  confirm_parks();
  update_poll();
}

// Handles the whole frames the reader holds, and stops — leaving the rest in the reader —
// when the answers queued reach the output high-water mark: one 64 KiB read of STATS
// requests would otherwise queue some 8,000 answers (tens of MB) at once. A gone peer's
// are all handled (nobody reads its answers). False when the session ended or the stream
// is malformed (the session failed).
bool ControlSession::handle_buffered_frames(bool to_the_end) {
  for (;;) {
    if (!to_the_end && input_paused()) {
      frames_held_ = reader_.buffered_bytes() > 0;  // pump() resumes them once output drains
      break;
    }
    std::optional<protocol::Frame> frame = reader_.next();
    if (!frame) break;
    sync_reader_fds();
    if (!to_the_end || !is_query(protocol::type_of(frame->message))) handle(*frame);
    if (closed()) return false;
    if (to_the_end) drop_unread_output();
  }
  sync_reader_fds();
  if (reader_.error() != protocol::DecodeError::none) {
    fail(error_code_for(reader_.error()), fmt::format("malformed frame: {}", protocol::to_string(reader_.error())));
    return false;
  }
  return true;
}

void ControlSession::sync_reader_fds() {
  const std::size_t now = reader_.queued_fds();
  core_.capacity.reader_fds_changed(reader_fds_, now);
  reader_fds_ = now;
}

void ControlSession::resume_input() {
  if (!paused_for_room_ || closed()) return;
  paused_for_room_ = false;
  read_input();
}

void ControlSession::handle(protocol::Frame& frame) {
  MessageType type = protocol::type_of(frame.message);
  if (protocol::is_minor_1(type) && !require_minor_1(type)) return;
  std::visit([&](auto& message) { on_message(message, frame.fds); }, frame.message);
}

bool ControlSession::require_minor_1(MessageType type) {
  if (minor_ >= protocol::kMinorExactlyOnce) return true;
  fail(ErrorCode::bad_frame, fmt::format("{} is a protocol 1.1 message; this session speaks 1.{}",
                                         protocol::to_string(type), minor_));
  return false;
}

bool ControlSession::require_owner(std::string_view what) {
  if (state_ == State::owner) return true;
  if (state_ == State::awaiting_hello) {
    fail(ErrorCode::hello_required, "the first message must be HELLO");
  } else {
    send_error(ErrorCode::not_owner, false, 0, fmt::format("an observer session cannot {}", what));
  }
  return false;
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
  if (core_.shutting_down()) {
    fail(ErrorCode::shutting_down, "parker is shutting down");
    return;
  }
  if (m.major != protocol::kVersionMajor) {
    fail(ErrorCode::bad_version, fmt::format("parker speaks protocol {}.{}, not {}.{}", protocol::kVersionMajor,
                                             protocol::kVersionMinor, m.major, m.minor));
    return;
  }
  minor_ = std::min(m.minor, protocol::kVersionMinor);
  out_.set_keep_woken(minor_ >= protocol::kMinorExactlyOnce);
  protocol::Welcome welcome;
  welcome.minor = minor_;
  welcome.max_blob = core_.config.max_blob;
  welcome.max_parked_per_owner = core_.config.max_parked_per_owner;
  welcome.session_id = id_;
  if (m.pool.empty()) {
    state_ = State::observer;
    send(welcome);
    spdlog::debug("session {}: observer (uid {}, protocol 1.{})", id_, peer_.uid, minor_);
    return;
  }
  if (!protocol::valid_pool_name(m.pool)) {
    fail(ErrorCode::bad_pool_name, "pool names are 1-64 bytes of [A-Za-z0-9._-]");
    return;
  }
  Pool* pool = core_.registry.pool_for(m.pool, peer_.uid);
  if (pool == nullptr && core_.table.pools() >= ParkedTable::kMaxPools) {
    fail(ErrorCode::not_allowed, fmt::format("parker holds {} pools, the most it can", ParkedTable::kMaxPools));
    return;
  }
  if (pool == nullptr) {
    spdlog::warn("refused uid {} (pid {}): pool '{}' belongs to another uid", peer_.uid, peer_.pid, m.pool);
    fail(ErrorCode::pool_taken, fmt::format("pool '{}' belongs to another uid", m.pool));
    return;
  }
  state_ = State::owner;
  pool_ = pool;
  core_.registry.session_became_owner();
  credit_ = core_.capacity.grant(core_.registry.credit_window());
  welcome.credit = credit_;
  welcome.parked_in_pool = static_cast<std::uint32_t>(pool->parked());
  send(welcome);
  spdlog::debug("session {}: owner of pool '{}' (uid {}, pid {}, protocol 1.{}), credit {}", id_, m.pool, peer_.uid,
                peer_.pid, minor_, credit_);
  pool->attach(*this);  // held wakes and CLOSED records follow the WELCOME
  if (credit_ < core_.registry.credit_window()) core_.registry.credit_changed();  // perhaps reclaim for it
}

void ControlSession::reject_all(protocol::Park& m, std::vector<UniqueFd>& fds, RejectReason reason) {
  protocol::Rejected rejected;
  for (auto& r : m.records) {
    rejected.records.push_back({r.id, reason, std::move(r.blob)});
    core_.counters.count(reason);
  }
  core_.capacity.fds_arrived(0, fds.size());
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
  if (minor_ < protocol::kMinorSocketChecked &&
      std::ranges::any_of(m.records, [](const auto& r) { return (r.flags & protocol::kSocketChecked) != 0; })) {
    // As a parker before 1.4 would: malformed. The fds go back first, as for a PARK before HELLO.
    reject_all(m, fds, RejectReason::no_credit);
    fail(ErrorCode::bad_frame,
         fmt::format("park flag 0x04 (socket_checked) is protocol 1.4; this session speaks 1.{}", minor_));
    return;
  }
  std::size_t n = m.records.size();
  std::size_t credited = std::min<std::size_t>(credit_, n);
  credit_ -= static_cast<std::uint32_t>(credited);
  core_.capacity.fds_arrived(credited, n - credited);

  protocol::Rejected rejected;
  std::vector<UniqueFd> returned;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t seq = ++parks_handled_;
    std::optional<RejectReason> reason;
    if (i >= credited) {
      reason = RejectReason::no_credit;
    } else if (finishing_ || leaving_) {
      reason = RejectReason::shutting_down;
    } else {
      // The owner may park again a connection whose WAKE it has not acknowledged yet: it
      // holds it, so parker's old copy is no longer needed (and must not be handed out).
      if (unacked_held_ != 0) release_unacked_id(m.records[i].id);
      reason = check_keepalive_set(m.records[i]);
      if (!reason) reason = pool_->park(m.records[i], fds[i]);
    }
    if (reason) {
      rejected.records.push_back({m.records[i].id, *reason, std::move(m.records[i].blob)});
      returned.push_back(std::move(fds[i]));
      core_.counters.count(*reason);
    } else {
      ++core_.counters.parks_total;
      if (minor_ >= protocol::kMinorExactlyOnce) provisional_.emplace_back(seq, m.records[i].id);
    }
  }
  if (!rejected.records.empty()) send(rejected, std::move(returned));
  core_.registry.credit_changed();
}

// 1.1: one PARKED per batch of frames read, after their REJECTED frames.
void ControlSession::confirm_parks() {
  if (minor_ < protocol::kMinorExactlyOnce || parks_handled_ == parks_confirm_sent_ || closed()) return;
  parks_confirm_sent_ = parks_handled_;
  OutgoingFrame out = frame_of(protocol::Parked{parks_handled_});
  out.confirms_parks = parks_handled_;
  out_.push(std::move(out));
  core_.registry.mark_dirty(*this);
}

void ControlSession::on_message(protocol::Recall& m, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("recall")) return;
  // A frame's worth at a time, so that each full WAKE frame can leave at once (below).
  const std::span<const std::uint64_t> ids(m.ids);
  std::vector<std::uint64_t> not_parked;
  for (std::size_t at = 0; at < ids.size(); at += protocol::kMaxRecordsPerFrame) {
    pool_->recall(ids.subspan(at, std::min(protocol::kMaxRecordsPerFrame, ids.size() - at)), not_parked);
    for (std::uint64_t id : not_parked) send_error(ErrorCode::unknown_id, false, id, "not parked");
    not_parked.clear();
    if (pending_wakes_.size() >= protocol::kMaxRecordsPerFrame) send_full_wake_frames();
  }
}

// One RECALL may name every parked connection (the library sends up to 2M ids a frame): were
// its WAKE frames written only after the last id, the owner would sit idle while parker takes
// them all out of its set. So each full frame goes as soon as it is decided, and the owner
// adopts the first connections while parker works on the next. The owner sees what it would
// if the frames read so far had been the whole batch: their REJECTED frames and errors are
// queued already, their PARKED goes next, then the wakes. Errors are left for pump(), which
// meets them again at the end of the batch (nothing here may end the session mid-frame).
void ControlSession::send_full_wake_frames() {
  if (!started_ || finishing_ || closed()) return;
  // The keeper hears of a wake before the owner does (pump); not waited for here.
  if (core_.keeper != nullptr && !core_.keeper->caught_up()) return;
  confirm_parks();
  encode_pending();
  auto result = out_.flush(fd_.get());
  take_flush_result(result);
}

void ControlSession::on_message(protocol::Drop& m, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("drop")) return;
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
  send(protocol::StatsReply{core_.registry.stats_text()});
}

void ControlSession::on_message(protocol::ListRequest& /*m*/, std::vector<UniqueFd>& /*fds*/) {
  if (state_ == State::awaiting_hello) return fail(ErrorCode::hello_required, "the first message must be HELLO");
  send(protocol::ListReply{core_.registry.list_text()});
}

// ---- 1.1: acknowledgements, inventory, leaving, credit reclaim --------------------------

void ControlSession::on_message(protocol::Ack& m, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("acknowledge")) return;
  if (m.wakes > wakes_written_) {
    fail(ErrorCode::bad_frame, fmt::format("ACK of {} wakes; only {} were sent", m.wakes, wakes_written_));
    return;
  }
  release_acked(m.wakes);
}

void ControlSession::release_acked(std::uint64_t upto) {
  std::size_t released = 0;
  while (!unacked_.empty() && unacked_.front().first_seq <= upto) {
    UnackedFrame& frame = unacked_.front();
    WrittenWakes& w = frame.wakes;
    const std::size_t n = w.fds.size();
    const std::size_t from = wakes_acked_ >= frame.first_seq ? static_cast<std::size_t>(wakes_acked_ - frame.first_seq + 1) : 0;
    const std::size_t to = static_cast<std::size_t>(std::min<std::uint64_t>(n, upto - frame.first_seq + 1));
    for (std::size_t i = from; i < to; ++i) {
      if (!w.fds[i]) continue;  // parked again before its ACK: let go already
      const std::uint64_t id = w.records[i].id;
      if (unacked_indexed_) {
        if (auto it = unacked_ids_.find(id); it != unacked_ids_.end() && it->second == frame.first_seq + i) {
          unacked_ids_.erase(it);
        }
      }
      if (pool_ != nullptr) pool_->tell_keeper(protocol::KeepOp::forget_woken, id);
      w.fds[i].reset();
      ++released;
      --unacked_held_;
    }
    if (to < n) break;  // acknowledged in part
    unacked_.pop_front();
  }
  wakes_acked_ = std::max(wakes_acked_, upto);
  if (unacked_held_ == 0) forget_unacked_index();
  if (released != 0) core_.fds_released(released);
}

void ControlSession::forget_unacked_index() {
  if (!unacked_indexed_) return;
  unacked_indexed_ = false;
  std::unordered_map<std::uint64_t, std::uint64_t>().swap(unacked_ids_);
}

// The index is built only when an owner parks again before acknowledging (the client
// library acknowledges first), and kept only while wakes are unacknowledged: the common
// path pays no hash-table insert and erase per wake.
void ControlSession::index_unacked() {
  if (unacked_indexed_) return;
  unacked_indexed_ = true;
  unacked_ids_.reserve(unacked_held_);
  for (const UnackedFrame& frame : unacked_) {
    for (std::size_t i = 0; i < frame.wakes.fds.size(); ++i) {
      if (frame.wakes.fds[i]) unacked_ids_[frame.wakes.records[i].id] = frame.first_seq + i;
    }
  }
}

UniqueFd* ControlSession::unacked_fd(std::uint64_t seq) noexcept {
  // The last frame that starts at or before seq.
  auto after = std::upper_bound(unacked_.begin(), unacked_.end(), seq,
                                [](std::uint64_t s, const UnackedFrame& f) { return s < f.first_seq; });
  if (after == unacked_.begin()) return nullptr;
  UnackedFrame& frame = *std::prev(after);
  const std::uint64_t i = seq - frame.first_seq;
  if (i >= frame.wakes.fds.size() || !frame.wakes.fds[i]) return nullptr;
  return &frame.wakes.fds[i];
}

void ControlSession::release_unacked_id(std::uint64_t id) {
  index_unacked();
  auto it = unacked_ids_.find(id);
  if (it == unacked_ids_.end()) return;
  UniqueFd* fd = unacked_fd(it->second);
  unacked_ids_.erase(it);
  if (fd != nullptr) {
    // Parked again: the keeper's record is the new park's, which this does not touch.
    if (pool_ != nullptr) pool_->tell_keeper(protocol::KeepOp::forget_woken, id);
    fd->reset();
    --unacked_held_;
    core_.fds_released(1);
  }
  if (unacked_held_ == 0) forget_unacked_index();
}

void ControlSession::on_message(protocol::InventoryRequest& /*m*/, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("ask for an inventory")) return;
  // Ids now; records as the output drains (a pool may hold 100k+ records with blobs). One
  // parked later is not in it — it was parked by a session of this pool, which knows it.
  inventory_ = pool_->parked_ids();
  inventory_next_ = 0;
  inventory_active_ = true;
  core_.registry.mark_dirty(*this);
}

void ControlSession::encode_inventory() {
  while (inventory_active_ && out_.queued_bytes() < kOutputHighWater) {
    protocol::InventoryReply reply;
    std::size_t bytes = 0;
    while (inventory_next_ < inventory_.size() && bytes < kMaxInventoryFrameBytes) {
      if (auto record = pool_->inventory_record(inventory_[inventory_next_])) {
        bytes += protocol::encoded_size(*record);
        reply.records.push_back(std::move(*record));
      }
      ++inventory_next_;
    }
    reply.last = inventory_next_ == inventory_.size();
    out_.push(frame_of(reply));
    if (reply.last) {
      inventory_active_ = false;
      std::vector<std::uint64_t>().swap(inventory_);
    }
  }
}

void ControlSession::on_message(protocol::Goodbye& /*m*/, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("say goodbye")) return;
  if (leaving_) return;
  leaving_ = true;
  spdlog::debug("session {}: owner leaving", id_);
  // No more wakes for it; what it was not sent yet goes to another session of the pool (or
  // is held for the next one). What it was sent it acknowledges or leaves to parker.
  pool_->detach(*this);
  return_unsent(*pool_, false);
  give_back_credit();
  confirm_parks();
  send(protocol::Goodbye{});
}

void ControlSession::reclaim_credit_above(std::uint32_t keep) {
  if (state_ != State::owner || minor_ < protocol::kMinorExactlyOnce || leaving_) return;
  std::uint32_t still_held = credit_ - std::min(credit_, reclaim_outstanding_);
  if (still_held <= keep) return;
  std::uint32_t wanted = still_held - keep;
  reclaims_asked_.push_back(wanted);
  reclaim_outstanding_ += wanted;
  send(protocol::Reclaim{wanted});
}

void ControlSession::on_message(protocol::CreditReturn& m, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("return credit")) return;
  if (!reclaims_asked_.empty()) {  // answers come in the order the RECLAIMs went
    reclaim_outstanding_ -= reclaims_asked_.front();
    reclaims_asked_.pop_front();
  }
  std::uint32_t n = std::min(m.returned, credit_);
  credit_ -= n;
  core_.capacity.return_credit(n);
  core_.registry.credit_changed();
}

// ---- 1.1, parker to parker: hand-over to a successor -------------------------------------

void ControlSession::on_message(protocol::TakeOver& m, std::vector<UniqueFd>& /*fds*/) {
  if (state_ != State::observer) {
    fail(ErrorCode::bad_frame, "TAKE_OVER comes from a session that said HELLO without a pool");
    return;
  }
  // Everything parker holds is the successor's to take: only its own uid (or root) may.
  if (peer_.uid != 0 && peer_.uid != ::geteuid()) {
    fail(ErrorCode::not_allowed, fmt::format("uid {} may not take over this parker (uid {})", peer_.uid, ::geteuid()));
    return;
  }
  core_.registry.hand_over(*this, m.room);
}

void ControlSession::on_message(protocol::Taken& m, std::vector<UniqueFd>& /*fds*/) {
  core_.registry.handover_taken(*this, m.records);
}

void ControlSession::send_lent(const protocol::Message& message, std::vector<int> fds) {
  OutgoingFrame out = frame_of(message);
  out.lent_fds = std::move(fds);
  out_.push(std::move(out));
  core_.registry.mark_dirty(*this);
}

// ---- output --------------------------------------------------------------------------------

void ControlSession::send(const protocol::Message& message, std::vector<UniqueFd> fds) {
  out_.push(frame_of(message, std::move(fds)));
  core_.registry.mark_dirty(*this);
}

void ControlSession::send_error(ErrorCode code, bool fatal, std::uint64_t id, std::string text) {
  core_.counters.count(code);
  send(protocol::ErrorMessage{code, fatal, id, std::move(text)});
}

void ControlSession::queue_wake(WakeItem item) {
  pending_wakes_.push_back(std::move(item));
  core_.registry.mark_dirty(*this);
}

void ControlSession::queue_closed(protocol::CloseRecord record) {
  pending_closed_.push_back(record);
  core_.registry.mark_dirty(*this);
}

void ControlSession::top_up_credit() {
  if (state_ != State::owner || finishing_ || leaving_) return;
  std::uint32_t window = core_.registry.credit_window();
  if (credit_ >= window) return;
  std::uint32_t deficit = window - credit_;
  if (credit_ != 0 && deficit < kMinCreditGrant) return;
  std::uint32_t granted = core_.capacity.grant(deficit);
  if (granted == 0) return;
  credit_ += granted;
  send(protocol::Credit{granted});
}

void ControlSession::encode_pending() {
  // WAKE frames: up to 253 records, and up to kMaxWakeFrameBytes (kMaxFrameBody for a
  // single record with a huge blob).
  while (!pending_wakes_.empty() && out_.queued_bytes() < kOutputHighWater) {
    protocol::Wake wake;
    OutgoingFrame out;
    const std::size_t most = std::min(pending_wakes_.size(), protocol::kMaxRecordsPerFrame);
    wake.records.reserve(most);
    out.fds.reserve(most);
    out.woken_ns.reserve(most);
    std::size_t body = 2;
    while (!pending_wakes_.empty() && wake.records.size() < protocol::kMaxRecordsPerFrame) {
      WakeItem& item = pending_wakes_.front();
      std::size_t size = protocol::encoded_size(item.record);
      if (!wake.records.empty() && body + size > kMaxWakeFrameBytes) break;
      body += size;
      wake.records.push_back(std::move(item.record));
      out.fds.push_back(std::move(item.fd));
      out.woken_ns.push_back(item.woken_ns);
      pending_wakes_.pop_front();
    }
    protocol::encode(wake, out.bytes);
    out.wakes = std::move(wake.records);  // kept with their fds until written (and acked)
    out_.push(std::move(out));
  }
  for (std::size_t at = 0; at < pending_closed_.size(); at += kClosedPerFrame) {
    std::size_t end = std::min(pending_closed_.size(), at + kClosedPerFrame);
    protocol::Closed closed;
    closed.records.assign(pending_closed_.begin() + static_cast<std::ptrdiff_t>(at),
                          pending_closed_.begin() + static_cast<std::ptrdiff_t>(end));
    OutgoingFrame out = frame_of(closed);
    out.closes = std::move(closed.records);  // back to the pool if never written whole
    out_.push(std::move(out));
  }
  pending_closed_.clear();
  encode_inventory();
}

void ControlSession::take_flush_result(OutputQueue::FlushResult& result) {
  core_.totals.bytes_to_owners += result.bytes_written;
  if (result.fds_released != 0) core_.fds_released(result.fds_released);
  // 1.0: a WAKE's fds are the owner's from the frame's first byte on.
  if (pool_ != nullptr) {
    for (std::uint64_t id : result.handed_ids) pool_->tell_keeper(protocol::KeepOp::forget_woken, id);
  }
  const std::uint64_t now_ns = result.written_wakes.empty() ? 0 : uv_hrtime();
  for (WrittenWakes& frame : result.written_wakes) {
    const std::size_t n = frame.fds.size();
    if (n == 0) continue;
    for (std::uint64_t woken : frame.woken_ns) {
      if (woken != 0) core_.counters.wake_delivery.observe(static_cast<double>(now_ns - woken) / 1e9);
    }
    if (unacked_indexed_) {
      for (std::size_t i = 0; i < n; ++i) unacked_ids_[frame.records[i].id] = wakes_written_ + 1 + i;
    }
    unacked_.push_back({wakes_written_ + 1, std::move(frame)});
    wakes_written_ += n;
    unacked_held_ += n;
  }
  if (result.parks_confirmed > parks_confirm_written_) {
    parks_confirm_written_ = result.parks_confirmed;
    while (!provisional_.empty() && provisional_.front().first <= parks_confirm_written_) provisional_.pop_front();
  }
}

void ControlSession::pump() {
  if (closed() || !started_) return;
  // An owner learns of a park or a wake only once the keeper knows it: the daemon pumps this
  // session again when the keeper's socket has taken the batch.
  if (core_.keeper != nullptr && !core_.keeper->caught_up() && !core_.keeper->flush()) return;
  for (;;) {
    encode_pending();
    if (finishing_ && pending_wakes_.empty() && !goodbye_queued_) {
      // From here on nothing is read (input_paused): the count in the ERROR is final.
      goodbye_queued_ = true;
      send_error(ErrorCode::shutting_down, true, last_write_handled(), "parker is shutting down");
    }
    auto result = out_.flush(fd_.get());
    take_flush_result(result);
    if (result.error.is(EAGAIN)) break;
    if (result.error.failed()) {
      spdlog::debug("session {}: write failed: {}", id_, describe(result.error));
      // The peer is gone, but what it wrote before may still wait in our socket: PARK
      // frames whose fds it closed, trusting us to take them.
      read_to_the_end();
      return;
    }
    if (pending_wakes_.empty() && !inventory_active_) break;  // everything went
  }
  if (finishing_ && goodbye_queued_ && out_.empty()) {
    close(Ending::by_parker);
    return;
  }
  if (frames_held_ && !input_paused()) {
    // Frames whose handling the output mark stopped wait in the reader, and the socket may
    // hold nothing more to make it readable: the drained output resumes them.
    frames_held_ = false;
    read_input();  // updates the poll
    return;
  }
  update_poll();
}

// ---- lifecycle -----------------------------------------------------------------------------

bool ControlSession::input_paused() const noexcept {
  // After the shutdown ERROR is queued parker reads nothing more: a WRITE read then would be
  // answered after the end of the session, which the owner never reads.
  return goodbye_queued_ || out_.queued_bytes() >= kOutputHighWater ||
         out_.queued_returned_fds() >= kReturnedFdsHighWater;
}

// 1.3: what a fatal ERROR tells the owner (docs/PROTOCOL.md, "1.3: how far parker got"). Every
// WRITE read was handled at once and its WRITE_RESULT queued ahead of the ERROR; nothing is
// read after it, so every WRITE numbered above this was never handled.
std::uint64_t ControlSession::last_write_handled() const noexcept {
  return minor_ >= protocol::kMinorWritesHandled ? writes_handled_ : 0;
}

void ControlSession::update_poll() {
  if (closed() || !started_) return;
  int events = 0;
  if (!input_paused() && !paused_for_room_) events |= UV_READABLE;
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
  core_.registry.mark_dirty(*this);
}

void ControlSession::fail(ErrorCode code, std::string text) {
  if (closed()) return;
  if (code == ErrorCode::not_allowed || code == ErrorCode::pool_taken) {
    ++core_.counters.refused_peers_total;
  } else {
    spdlog::debug("session {}: closing: {}: {}", id_, protocol::to_string(code), text);
  }
  confirm_parks();
  send_error(code, true, last_write_handled(), std::move(text));
  if (core_.keeper == nullptr || core_.keeper->caught_up() || core_.keeper->flush()) {
    auto result = out_.flush(fd_.get());  // best effort: the peer may not be reading
    take_flush_result(result);
  }
  close(Ending::by_parker);
}

// Everything in flight to this session goes where exactly-once puts it (PROTOCOL.md, 1.1):
//   pending wakes (never encoded) and wakes in frames not written whole: back to the pool;
//   wakes written whole, not acknowledged: the owner's if parker ended the session (it reads
//     every whole frame before the end of the stream), else parker's: back to the pool;
//   parks accepted but not confirmed: if parker ended the session, the owner keeps its own
//     copy and gets them back as not sent, so parker lets go of them.
void ControlSession::leave_pool(Ending ending) {
  Pool* pool = std::exchange(pool_, nullptr);
  if (pool == nullptr) return;  // never an owner: nothing of a pool was in flight here
  pool->detach(*this);          // so the wakes cannot come back here
  // Oldest first: wakes written whole and not acknowledged, then those not written whole.
  std::size_t released = 0;
  for (UnackedFrame& frame : unacked_) {
    WrittenWakes& w = frame.wakes;
    for (std::size_t i = 0; i < w.fds.size(); ++i) {
      if (!w.fds[i]) continue;  // acknowledged, or parked again
      if (ending == Ending::peer_gone) {
        pool->deliver(WakeItem{std::move(w.records[i]), std::move(w.fds[i]), w.woken_ns_of(i)});
      } else {
        pool->tell_keeper(protocol::KeepOp::forget_woken, w.records[i].id);
        w.fds[i].reset();
        ++released;
      }
    }
  }
  unacked_.clear();
  unacked_held_ = 0;
  forget_unacked_index();
  if (ending == Ending::by_parker) {
    for (const auto& [seq, id] : provisional_) released += pool->let_go_unconfirmed(id) ? 1 : 0;
  }
  provisional_.clear();
  if (released != 0) core_.fds_released(released);
  return_unsent(*pool, minor_ >= protocol::kMinorExactlyOnce);
}

// Wakes whose fds are still ours and CLOSED records, in queued frames not written whole
// (`include_started`: a frame already partly written too — only when the connection is
// being closed), then wakes and CLOSED records not yet encoded: back to the pool, in order.
void ControlSession::return_unsent(Pool& pool, bool include_started) {
  for (WakeItem& item : out_.take_wakes(include_started)) pool.deliver(std::move(item));
  for (const protocol::CloseRecord& record : out_.take_closes(include_started)) pool.deliver(record);
  while (!pending_wakes_.empty()) {
    pool.deliver(std::move(pending_wakes_.front()));
    pending_wakes_.pop_front();
  }
  for (auto& record : pending_closed_) pool.deliver(record);
  pending_closed_.clear();
}

void ControlSession::give_back_credit() {
  if (credit_ == 0) return;
  core_.capacity.return_credit(credit_);
  credit_ = 0;
  core_.registry.credit_changed();
}

void ControlSession::close(Ending ending) {
  if (closed()) return;
  leave_pool(ending);
  bool was_owner = state_ == State::owner;
  state_ = State::closed;
  give_back_credit();
  // What is still queued (refused fds of a peer that went away) is closed.
  closed_unsent(out_.clear());
  // Fds of a frame that will never complete.
  reader_ = protocol::FrameReader{};
  core_.capacity.reader_fds_changed(reader_fds_, 0);
  reader_fds_ = 0;
  core_.registry.session_closing(*this, was_owner);
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
