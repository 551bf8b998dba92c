// parker::Client — the session's life: connect, HELLO/WELCOME, back-off, close; and the calls
// that queue work (park, recall, drop). Sending is in client_outgoing.cpp, receiving in
// client_incoming.cpp.
#include "parker/client.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <limits>

#include "client_connect.hpp"

namespace parker {

Client::Client(ClientCallbacks callbacks, ClientLoop* loop) : callbacks_(std::move(callbacks)), loop_(loop) {}

Client::~Client() {
  // A poller must let go of the fd before it is closed (see ClientLoop::unwatch).
  if (socket_ && loop_ != nullptr) loop_->unwatch(socket_.get());
}

Error Client::connect(std::string_view path, std::string_view pool, const ClientOptions& options) {
  if (state_ != State::idle) return Error{EISCONN};
  if (!pool.empty() && !protocol::valid_pool_name(pool)) return Error{EINVAL};
  if (Error e = detail::check_socket_path(path); e.failed()) return e;
  if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min ||
      options.hello_timeout.count() <= 0 || options.max_minor > protocol::kVersionMinor) {
    return Error{EINVAL};
  }
  path_ = path;
  pool_ = pool;
  options_ = options;
  next_delay_ = options.reconnect_min;
  attempt_connection();
  return {};
}

void Client::attempt_connection() {
  auto connected = detail::connect_nonblocking(path_);
  if (!connected.ok()) {
    fail_attempt(connected.error);
    return;
  }
  ++generation_;
  socket_ = std::move(connected.value);
  reader_ = protocol::FrameReader{};
  send_queue_.clear();
  wants_write_ = false;
  credit_ = 0;
  welcome_ = protocol::Welcome{};
  welcome_.minor = 0;  // 1.0 rules until parker says otherwise
  parks_sent_ = parks_sent_at_read_ = wakes_received_ = acknowledged_ = ack_sent_ = 0;
  inventory_wanted_ = false;
  queued_writes_.clear();  // the old session's: reported by take_unanswered_writes()
  writes_queued_ = writes_answered_ = 0;
  write_frames_.clear();
  parker_handled_writes_.reset();
  state_ = State::waiting;
  OutgoingMessage hello;
  protocol::encode(protocol::Hello{protocol::kVersionMajor, options_.max_minor, pool_}, hello.bytes);
  send_queue_.push(std::move(hello));
  if (loop_ != nullptr) loop_->watch(socket_.get(), false);
  arm_timer(options_.hello_timeout);
  write_out();
}

// No session (an attempt failed, or one ended): schedule the next attempt and say so.
void Client::fail_attempt(Error why) {
  std::chrono::milliseconds retry_in{0};
  if (options_.reconnect) {
    state_ = State::backing_off;
    retry_in = next_delay_;
    next_delay_ = std::min(next_delay_ * 2, options_.reconnect_max);
    arm_timer(retry_in);
  } else {
    state_ = State::idle;
    arm_timer(std::nullopt);
  }
  if (callbacks_.on_disconnected) callbacks_.on_disconnected(why, retry_in);
}

void Client::disconnect(Error why, Ending ending) {
  const bool was_leaving = state_ == State::leaving;
  if (ending == Ending::by_us) tell_parker_what_we_adopted();
  // While the send queue still says which frames left whole.
  const std::optional<UnansweredWrites> unanswered = take_unanswered_writes();
  std::vector<RejectedPark> returned = drop_connection(ending);
  // Not connected from here on (a park() from a callback gets ENOTCONN). Give the fds back
  // before anything else can happen, then the writes' outcome, then the disconnection.
  state_ = State::backing_off;
  return_parks(std::move(returned));
  if (state_ == State::idle) return;  // an on_rejected callback called close()
  if (unanswered && callbacks_.on_writes_unanswered) {
    callbacks_.on_writes_unanswered(*unanswered);
    if (state_ == State::idle) return;  // it called close()
  }
  if (was_leaving) {
    end_leaving(why);
    return;
  }
  fail_attempt(why);
}

// The connection is over: what is still ours comes back (see take_unsent_parks), queued
// requests go, and the socket closes (its poller let go first).
std::vector<RejectedPark> Client::drop_connection(Ending ending) {
  std::vector<RejectedPark> returned = take_unsent_parks(ending);
  confirmed_copies_.clear();  // parker confirmed them: ours only close
  queued_recalls_.clear();
  queued_drops_.clear();
  if (loop_ != nullptr && socket_) loop_->unwatch(socket_.get());
  socket_.reset();
  ++generation_;
  reader_ = protocol::FrameReader{};  // closes fds of a frame that will never complete
  send_queue_.clear();
  wants_write_ = false;
  credit_ = 0;
  return returned;
}

// We end a 1.1 session: wakes the program adopted must not be handed out again, so parker
// must hear the ACK first (best effort and without callbacks: an ACK is a few bytes, the
// socket almost always takes them).
void Client::tell_parker_what_we_adopted() {
  if (!socket_ || !exactly_once()) return;
  encode_ack();
  (void)send_queue_.flush(socket_.get());
}

void Client::end_leaving(Error why) {
  state_ = State::idle;
  arm_timer(std::nullopt);
  if (callbacks_.on_left) callbacks_.on_left(why);
}

void Client::close() {
  tell_parker_what_we_adopted();
  std::vector<RejectedPark> returned = drop_connection(Ending::by_us);
  if (state_ != State::idle || timer_deadline_) arm_timer(std::nullopt);
  state_ = State::idle;
  return_parks(std::move(returned));
}

void Client::abandon_connection(Error why) {
  if (socket_) disconnect(why, Ending::by_us);
}

void Client::on_timer() {
  timer_deadline_.reset();
  switch (state_) {
    case State::backing_off: attempt_connection(); break;
    case State::waiting: disconnect(Error{ETIMEDOUT}, Ending::by_us); break;  // accepted, never welcomed
    case State::leaving: disconnect(Error{ETIMEDOUT}, Ending::by_us); break;  // no GOODBYE in time
    case State::idle:
    case State::ready: break;
  }
}

void Client::arm_timer(std::optional<std::chrono::milliseconds> delay) {
  if (delay) {
    timer_deadline_ = std::chrono::steady_clock::now() + *delay;
  } else {
    timer_deadline_.reset();
  }
  if (loop_ != nullptr) loop_->set_timer(delay);
}

Error Client::ensure_owner_session() const {
  if (state_ != State::ready) return Error{ENOTCONN};
  if (pool_.empty()) return Error{EINVAL};  // an observer cannot park, recall or drop
  return {};
}

Error Client::park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& options) {
  if (!fd) return Error{EBADF};
  if (Error e = ensure_owner_session(); e.failed()) return e;
  if (options.deadline.count() < 0 || options.deadline.count() > std::numeric_limits<std::uint32_t>::max()) {
    return Error{EINVAL};
  }
  protocol::ParkRecord record{id, static_cast<std::uint32_t>(options.deadline.count()), 0, {}};
  // One record must fit a frame: the body holds the count (2 bytes) and the record.
  if ((welcome_.max_blob != 0 && blob.size() > welcome_.max_blob) ||
      protocol::encoded_size(record) + blob.size() + 2 > protocol::kMaxFrameBody) {
    return Error{EMSGSIZE};
  }
  // Parker would refuse a non-socket too, but without the blob: catch it here, where the
  // caller still has everything.
  if (!options.socket_known) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::from_errno();
    if (!S_ISSOCK(st.st_mode)) return Error{ENOTSOCK};
  }
  if (credit_ == 0) return Error{ENOBUFS};
  --credit_;
  if (options.keepalive_set > protocol::kMaxKeepaliveSets || (options.keepalive_set != 0 && !exactly_once())) {
    ++credit_;
    return Error{EINVAL};
  }
  record.flags = static_cast<std::uint8_t>((options.wake_on_deadline ? protocol::kWakeOnDeadline : 0) |
                                           (options.wake_on_hangup ? protocol::kWakeOnHangup : 0) |
                                           (options.keepalive_set << protocol::kKeepaliveSetShift));
  record.blob.assign(blob);
  queued_parks_.push_back({std::move(fd), std::move(record)});
  if (loop_ != nullptr) loop_->flush_needed();
  return {};
}

Error Client::recall(std::uint64_t id) {
  if (Error e = ensure_owner_session(); e.failed()) return e;
  queued_recalls_.push_back(id);
  if (loop_ != nullptr) loop_->flush_needed();
  return {};
}

Error Client::drop(std::uint64_t id) {
  if (Error e = ensure_owner_session(); e.failed()) return e;
  queued_drops_.push_back(id);
  if (loop_ != nullptr) loop_->flush_needed();
  return {};
}

Error Client::acknowledge(std::uint64_t seq) {
  if (state_ != State::ready && state_ != State::leaving) return Error{ENOTCONN};
  if (!exactly_once()) return Error{ENOTSUP};
  if (seq > wakes_received_) return Error{EINVAL};
  if (seq > acknowledged_) {
    acknowledged_ = seq;
    if (loop_ != nullptr) loop_->flush_needed();
  }
  return {};
}

Error Client::request_inventory() {
  if (Error e = ensure_owner_session(); e.failed()) return e;
  if (!exactly_once()) return Error{ENOTSUP};
  inventory_wanted_ = true;
  if (loop_ != nullptr) loop_->flush_needed();
  return {};
}

Error Client::leave() {
  if (state_ != State::ready) return Error{ENOTCONN};
  if (!exactly_once()) {
    flush();
    close();
    if (callbacks_.on_left) callbacks_.on_left(Error{});
    return {};
  }
  flush();  // what was queued goes first, so GOODBYE's answer confirms it too
  state_ = State::leaving;
  arm_timer(options_.hello_timeout);  // parker answers at once; if not, give up
  send_now(protocol::Goodbye{});
  return {};
}

bool Client::has_queued() const noexcept {
  return !queued_parks_.empty() || !queued_recalls_.empty() || !queued_drops_.empty() || !queued_writes_.empty();
}

std::string RejectedPark::describe() const {
  if (reason) return "parker refused it: " + std::string(protocol::to_string(*reason));
  return "not sent: the connection to parker was lost or closed first";
}

std::string_view to_string(Client::State state) {
  switch (state) {
    case Client::State::idle: return "idle";
    case Client::State::waiting: return "waiting";
    case Client::State::ready: return "ready";
    case Client::State::backing_off: return "backing_off";
    case Client::State::leaving: return "leaving";
  }
  return "unknown";
}

}  // namespace parker
