#include "heavy/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "heavy/connection.hpp"
#include "heavy/listener.hpp"
#include "heavy/session_blob.hpp"
#include "heavy/tcp_socket.hpp"

namespace heavy {

namespace {

constexpr int kAcceptBatch = 256;           // connections taken per readiness, for fairness
constexpr std::uint64_t kSweepEveryMs = 100;
constexpr std::size_t kSweepBucketsPerDb = 64;

std::int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

Server::Server(uv_loop_t* loop, ServerOptions options)
    : loop_(loop), options_(std::move(options)), engine_(keyspace_, pubsub_, stats_, identity_) {
  identity_.started_unix_ms = unix_ms_now();
  identity_.session_bytes = options_.session_bytes;
  identity_.tcp_port = options_.port;
  identity_.client_limits = options_.client_limits;
  next_client_id_ = options_.first_client_id;
  spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));

  uv_timer_init(loop_, &sweep_timer_);
  uv_check_init(loop_, &flush_check_);
  uv_timer_init(loop_, &drain_timer_);
  sweep_timer_.data = flush_check_.data = drain_timer_.data = this;
  open_handles_ = 3;
  uv_timer_start(&sweep_timer_, on_sweep, kSweepEveryMs, kSweepEveryMs);
  uv_check_start(&flush_check_, on_check);
}

Server::~Server() {
  if (open_handles_ != 0 || listener_ != nullptr || !connections_.empty()) {
    // libuv still points into this object: destroying it now would be a use-after-free later.
    spdlog::critical("heavy::Server destroyed before shutdown() finished and the loop ran dry");
    std::abort();
  }
}

// --- Listening ---

std::string Server::listen() {
  ListenResult r = listen_tcp(options_.bind, options_.port);
  if (!r.fd) return r.error;
  return start_listener(std::move(r.fd));
}

std::string Server::adopt_listener(parker::UniqueFd fd) {
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || accepting == 0) {
    return "adopt_listener: not a listening socket";
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return std::string("adopt_listener: fcntl: ") + std::strerror(errno);
  }
  return start_listener(std::move(fd));
}

std::string Server::start_listener(parker::UniqueFd fd) {
  if (listener_ != nullptr) return "already listening";
  if (stopping_) return "shutting down";
  const std::uint16_t port = local_port(fd.get());
  listener_ = Listener::start(loop_, std::move(fd), [this] { accept_pending(); });
  if (listener_ == nullptr) return "uv_poll_init_socket on the listening socket failed";
  identity_.tcp_port = port;
  return {};
}

parker::UniqueFd Server::detach_listener() noexcept {
  if (listener_ == nullptr) return {};
  parker::UniqueFd fd = listener_->detach();
  listener_ = nullptr;
  return fd;
}

std::string Server::listening_address() const {
  return listener_ == nullptr ? std::string() : local_address(listener_->fd());
}

void Server::accept_pending() noexcept {
  for (int i = 0; i < kAcceptBatch && listener_ != nullptr; ++i) {
    const int fd = ::accept4(listener_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      accept_one(parker::UniqueFd(fd));
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if ((errno == EMFILE || errno == ENFILE) && spare_fd_) {
      // Out of descriptors: the pending connection would make the listener readable forever.
      // Free the spare fd, accept and close at once (the client sees a clean close, not a
      // hang), then take the spare back — libuv's uv__emfile_trick.
      spare_fd_.reset();
      parker::UniqueFd dropped(::accept4(listener_->fd(), nullptr, nullptr, SOCK_CLOEXEC));
      dropped.reset();
      spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      ++stats_.rejected_connections;
      spdlog::warn("accept: out of file descriptors; a connection was refused");
      continue;
    }
    spdlog::warn("accept: {}", std::strerror(errno));
    return;
  }
}

Session Server::new_session() noexcept {
  Session s;
  s.id = next_client_id_++;
  s.counters.created_unix_ms = static_cast<std::uint64_t>(unix_ms_now());
  return s;
}

void Server::accept_one(parker::UniqueFd fd) noexcept {
  ++stats_.connections_received;
  (void)prepare_client_socket(fd.get());
  Connection* conn = nullptr;
  try {
    conn = Connection::start(*this, fd, new_session());
  } catch (const std::bad_alloc&) {
    conn = nullptr;
  }
  if (conn == nullptr) {
    ++stats_.rejected_connections;
    spdlog::warn("no memory for a new session of {} bytes; connection refused", options_.session_bytes);
    return;  // fd closes here
  }
  register_connection(conn);
}

// --- Connections ---

void Server::register_connection(Connection* conn) {
  connections_.emplace(conn->id(), conn);
  ++stats_.active_connections;
  conn->older_ = newest_;
  conn->newer_ = nullptr;
  (newest_ != nullptr ? newest_->newer_ : oldest_) = conn;
  newest_ = conn;
}

void Server::unlink_activity(Connection& conn) noexcept {
  (conn.older_ != nullptr ? conn.older_->newer_ : oldest_) = conn.newer_;
  (conn.newer_ != nullptr ? conn.newer_->older_ : newest_) = conn.older_;
  conn.older_ = conn.newer_ = nullptr;
}

void Server::mark_active(Connection& conn) noexcept {
  if (newest_ == &conn) return;  // the common case for a busy client: nothing to move
  unlink_activity(conn);
  conn.older_ = newest_;
  (newest_ != nullptr ? newest_->newer_ : oldest_) = &conn;
  newest_ = &conn;
}

std::uint64_t Server::last_input_of(const Connection& conn) noexcept { return conn.last_input_ms(); }
Connection* Server::newer_of(const Connection& conn) noexcept { return conn.newer_; }

Connection* Server::find_connection(std::uint64_t client_id) const {
  auto it = connections_.find(client_id);
  return it == connections_.end() ? nullptr : it->second;
}

void Server::forget(Connection& conn) noexcept {
  auto it = connections_.find(conn.id());
  if (it == connections_.end() || it->second != &conn) return;  // never registered
  connections_.erase(it);
  --stats_.active_connections;
  unlink_activity(conn);
  if (conn.session().subscribed()) {
    pubsub_.rebind(conn.session().channels, conn.session().patterns, &conn, nullptr);
    --stats_.subscriber_connections;
  }
  if (conn.flush_queued_) {
    std::erase(flush_queue_, &conn);
    conn.flush_queued_ = false;
  }
  if (stopping_) maybe_finish();
}

void Server::queue_flush(Connection* conn) { flush_queue_.push_back(conn); }

void Server::on_check(uv_check_t* check) noexcept {
  auto* self = static_cast<Server*>(check->data);
  if (self->flush_queue_.empty()) return;
  // Flushing may close a connection, which edits flush_queue_: walk a copy. Every pointer in it
  // stays valid for this walk, since memory is freed only in close callbacks, which run later.
  std::vector<Connection*> batch;
  batch.swap(self->flush_queue_);
  for (Connection* c : batch) c->flush_queued();
  if (self->flush_queue_.empty()) {
    batch.clear();
    self->flush_queue_.swap(batch);  // keep the capacity for next time
  }
}

DetachResult Server::detach_connection(std::uint64_t client_id, PubSubSink* stand_in, std::size_t max_blob,
                                       bool any_moment) {
  Connection* conn = find_connection(client_id);
  if (conn == nullptr) return {std::nullopt, "no such client"};
  if (!(any_moment ? conn->can_hand_over() : conn->idle())) return {std::nullopt, "not idle"};
  std::optional<std::vector<std::byte>> blob;
  try {
    blob = conn->encode_blob(max_blob);
  } catch (const std::bad_alloc&) {
    blob.reset();
  }
  if (!blob) return {std::nullopt, "session too large"};
  if (stand_in != nullptr) pubsub_.rebind(conn->session().channels, conn->session().patterns, conn, stand_in);
  DetachedConnection d;
  d.client_id = client_id;
  d.blob = std::move(*blob);
  d.fd = conn->detach();  // forget() drops whatever subscriptions are left
  return {std::move(d), {}};
}

AdoptResult Server::adopt_connection(parker::UniqueFd& fd, std::span<const std::byte> blob, PubSubSink* stand_in) {
  AdoptResult r;
  auto fail = [&](std::string_view why) {
    r.error = why;
    return r;
  };
  if (stopping_) return fail("shutting down");
  SessionDecodeResult decoded = decode_session(blob);
  if (!decoded.session) return fail(decoded.error);
  Session session = std::move(*decoded.session);
  if (connections_.contains(session.id)) {
    session.id = next_client_id_++;  // a new process gave that id away meanwhile
  } else if (session.id >= next_client_id_) {
    next_client_id_ = session.id + 1;
  }
  if (!prepare_client_socket(fd.get())) return fail("not a usable socket");
  Connection* conn = nullptr;
  try {
    conn = Connection::start(*this, fd, std::move(session));
  } catch (const std::bad_alloc&) {
    conn = nullptr;
  }
  if (conn == nullptr) return fail("no memory for the session");
  register_connection(conn);
  if (conn->session().subscribed()) {
    for (const std::string& channel : conn->session().channels) {
      if (stand_in != nullptr) pubsub_.unsubscribe(channel, stand_in);
      pubsub_.subscribe(channel, conn);
    }
    for (const std::string& pattern : conn->session().patterns) {
      if (stand_in != nullptr) pubsub_.punsubscribe(pattern, stand_in);
      pubsub_.psubscribe(pattern, conn);
    }
    ++stats_.subscriber_connections;
  }
  r.connection = conn;
  conn->resume();  // what it brought along: replies to send, requests to run
  return r;
}

// --- Expiry ---

void Server::on_sweep(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Server*>(timer->data);
  self->close_timed_out();
  if (!self->keyspace_.has_volatile_keys()) return;
  (void)self->keyspace_.sweep(static_cast<std::int64_t>(uv_now(self->loop_)), kSweepBucketsPerDb);
}

// --- Idle timeout (redis' `timeout`) ---

// Subscribers are exempt, as in redis (they are meant to wait). Only the quiet end of the
// activity list is visited, so busy connections cost nothing here.
void Server::close_timed_out() noexcept {
  const std::uint64_t timeout_ms = options_.client_limits.timeout_seconds * 1000;
  const std::uint64_t now = uv_now(loop_);
  if (timeout_ms == 0 || now < timeout_ms) return;
  for_each_quiet_since(now - timeout_ms, [this](Connection& c) {
    if (c.session().subscribed() || c.closing()) return;
    spdlog::debug("client {}: idle for {} s; closing it (timeout)", c.id(), options_.client_limits.timeout_seconds);
    ++stats_.timed_out_clients;
    c.close();
  });
}

// --- Shutdown ---

void Server::shutdown() noexcept {
  if (finished_) return;
  if (stopping_) {
    close_all_connections();
    return;
  }
  stopping_ = true;
  if (listener_ != nullptr) {
    listener_->close();
    listener_ = nullptr;
  }
  std::vector<Connection*> all;
  all.reserve(connections_.size());
  for (auto& [id, conn] : connections_) all.push_back(conn);
  for (Connection* c : all) c->begin_drain();  // may close (and forget) at once
  if (!finished_ && !connections_.empty()) {
    spdlog::info("draining {} connection(s)", connections_.size());
    uv_timer_start(&drain_timer_, on_drain_timeout, options_.drain_timeout_ms, 0);
  }
  maybe_finish();
}

void Server::on_drain_timeout(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Server*>(timer->data);
  spdlog::warn("{} connection(s) still busy after {} ms; closing them", self->connections_.size(),
               self->options_.drain_timeout_ms);
  self->close_all_connections();
}

void Server::close_all_connections() noexcept {
  std::vector<Connection*> all;
  all.reserve(connections_.size());
  for (auto& [id, conn] : connections_) all.push_back(conn);
  for (Connection* c : all) c->close();
}

void Server::maybe_finish() noexcept {
  if (!stopping_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  flush_queue_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), on_handle_closed);
  if (on_stopped_) on_stopped_();
}

void Server::on_handle_closed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<Server*>(handle->data);
  --self->open_handles_;
}

}  // namespace heavy
