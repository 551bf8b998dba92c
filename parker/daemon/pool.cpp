#include "pool.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "control_session.hpp"
#include "daemon.hpp"

namespace parker::daemon {

using protocol::CloseReason;
using protocol::RejectReason;
using protocol::WakeReason;

Pool::Pool(Daemon& daemon, std::string name, uid_t owner_uid)
    : daemon_(daemon), name_(std::move(name)), owner_uid_(owner_uid) {}

Pool::~Pool() {
  // Only idle pools are destroyed: nothing parked or closing references this pool.
  for (auto& held : held_wakes_) close_held_wake(held, CloseReason::shutdown);
}

bool Pool::idle() const noexcept {
  return parked_.empty() && retiring_.empty() && sessions_.empty() && held_wakes_.empty() &&
         held_closed_.empty();
}

// ---- parking ---------------------------------------------------------------------------

std::optional<RejectReason> Pool::park(const protocol::ParkRecord& record, UniqueFd& fd) {
  const Config& config = daemon_.config();
  if (daemon_.shutting_down()) return RejectReason::shutting_down;
  if (record.blob.size() > config.max_blob) return RejectReason::blob_too_big;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISSOCK(st.st_mode)) return RejectReason::not_socket;
  if (parked_.contains(record.id)) return RejectReason::duplicate_id;
  if (config.max_parked_per_owner != 0 && parked_.size() >= config.max_parked_per_owner) {
    return RejectReason::quota_owner;
  }
  if (daemon_.parked_total() >= daemon_.max_parked()) return RejectReason::quota_total;

  // libuv makes the fd non-blocking, and O_NONBLOCK lives in the file description the
  // owner shares: remember to give the socket back as the owner had it.
  int fl = ::fcntl(fd.get(), F_GETFL);
  auto it = parked_.emplace(record.id).first;
  ParkedSocket& s = mutable_element(*it);
  if (uv_poll_init(daemon_.loop(), &s.poll, fd.get()) != 0) {
    parked_.erase(it);
    return RejectReason::watch_failed;
  }
  s.poll.data = this;
  if (uv_poll_start(&s.poll, UV_READABLE | UV_DISCONNECT, on_poll) != 0) {
    if (fl >= 0 && (fl & O_NONBLOCK) == 0) (void)::fcntl(fd.get(), F_SETFL, fl);
    s.state = ParkedSocket::retiring;  // never counted as parked; the caller keeps fd
    auto node = parked_.extract(it);
    s.index = static_cast<std::uint32_t>(retiring_.size());
    retiring_.push_back(std::move(node));
    uv_close(reinterpret_cast<uv_handle_t*>(&s.poll), on_poll_closed);
    return RejectReason::watch_failed;
  }
  s.fd = fd.release();
  std::uint8_t flags = record.flags & protocol::kKnownParkFlags;
  if (fl >= 0 && (fl & O_NONBLOCK) == 0) flags |= ParkedSocket::was_blocking;
  s.flags = flags;
  s.set_blob(record.blob);
  blob_bytes_ += record.blob.size();
  if (record.deadline_ms != 0) {
    s.deadline = daemon_.now() + record.deadline_ms;
    daemon_.schedule_deadline(s);
  }
  daemon_.parked_added(record.blob.size());
  // A socket with data already waiting comes back at once: epoll is level-triggered, so
  // the first poll of the loop reports it readable.
  return std::nullopt;
}

bool Pool::recall(std::uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return false;
  wake(mutable_element(*it), WakeReason::recalled);
  return true;
}

bool Pool::drop(std::uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return false;
  close_socket(mutable_element(*it), CloseReason::dropped);
  return true;
}

void Pool::deadline_passed(ParkedSocket& socket) {
  if ((socket.flags & ParkedSocket::wake_on_deadline) != 0) {
    wake(socket, WakeReason::deadline);
  } else {
    close_socket(socket, CloseReason::deadline);
    deliver(protocol::CloseRecord{socket.id, CloseReason::deadline});
  }
}

void Pool::shutdown() {
  bool has_session = !sessions_.empty();
  while (!parked_.empty()) {
    ParkedSocket& s = mutable_element(*parked_.begin());  // retiring takes it out of the set
    if (has_session) {
      wake(s, WakeReason::shutdown);
    } else {
      close_socket(s, CloseReason::shutdown);
    }
  }
  if (!has_session) {
    for (auto& held : held_wakes_) close_held_wake(held, CloseReason::shutdown);
    daemon_.held_removed(held_wakes_.size());
    held_wakes_.clear();
    held_closed_.clear();
  }
}

// ---- events on parked sockets -----------------------------------------------------------

void Pool::on_poll(uv_poll_t* handle, int status, int /*events*/) noexcept {
  ParkedSocket& s = ParkedSocket::from(handle);
  s.pool().socket_event(s, status);
}

void Pool::socket_event(ParkedSocket& s, int status) {
  if (s.state != ParkedSocket::parked) return;
  SocketEvent event = probe_socket(s.fd);
  // On POLLERR libuv has already stopped the watcher (status < 0): nothing would ever
  // report this socket again, so settle it now.
  if (event == SocketEvent::spurious) {
    if (status >= 0) return;
    event = SocketEvent::error;
  }
  bool hand_back_hangup = (s.flags & ParkedSocket::wake_on_hangup) != 0;
  switch (event) {
    case SocketEvent::readable:
      wake(s, WakeReason::readable);
      break;
    case SocketEvent::hangup:
    case SocketEvent::error: {
      // A reset is a hang-up too for an owner that asked for them back.
      if (hand_back_hangup) {
        wake(s, WakeReason::hangup);
        break;
      }
      auto reason = event == SocketEvent::hangup ? CloseReason::hangup : CloseReason::error;
      std::uint64_t id = s.id;
      close_socket(s, reason);
      deliver(protocol::CloseRecord{id, reason});
      break;
    }
    case SocketEvent::spurious:
      break;
  }
}

void Pool::wake(ParkedSocket& s, WakeReason reason) {
  WakeItem item;
  item.record.id = s.id;
  item.record.reason = reason;
  item.record.blob = s.blob_view();
  bool restore_blocking = (s.flags & ParkedSocket::was_blocking) != 0;
  item.fd = retire(s);
  if (restore_blocking) {
    int fl = ::fcntl(item.fd.get(), F_GETFL);
    if (fl >= 0) (void)::fcntl(item.fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  }
  daemon_.counters().count(reason);
  deliver(std::move(item));
}

void Pool::close_socket(ParkedSocket& s, CloseReason reason) {
  UniqueFd fd = retire(s);
  fd.reset();
  daemon_.fds_released(1);
  daemon_.counters().count(reason);
}

UniqueFd Pool::retire(ParkedSocket& s) {
  daemon_.cancel_deadline(s);
  // Stopping the poll takes the fd out of epoll (libuv invalidates it) before the fd is
  // closed or handed away: an epoll registration outlives our fd while the owner's copy
  // of the same file stays open.
  uv_poll_stop(&s.poll);
  UniqueFd fd(s.fd);
  s.fd = -1;
  s.state = ParkedSocket::retiring;
  blob_bytes_ -= s.blob_size();
  daemon_.parked_removed(s.blob_size());
  auto node = parked_.extract(parked_.find(s.id));  // the element stays where it is: libuv points at it
  s.index = static_cast<std::uint32_t>(retiring_.size());
  retiring_.push_back(std::move(node));
  uv_close(reinterpret_cast<uv_handle_t*>(&s.poll), on_poll_closed);
  return fd;
}

void Pool::on_poll_closed(uv_handle_t* handle) noexcept {
  ParkedSocket& s = ParkedSocket::from(reinterpret_cast<uv_poll_t*>(handle));
  s.pool().forget(s);
}

void Pool::forget(ParkedSocket& s) {
  std::uint32_t i = s.index;
  if (i + 1 != retiring_.size()) {
    std::swap(retiring_[i], retiring_.back());
    retiring_[i].value().index = i;
  }
  retiring_.pop_back();  // frees the node, and with it `s`
  daemon_.pool_may_be_idle(*this);
}

// ---- sessions and delivery ----------------------------------------------------------------

void Pool::attach(ControlSession& session) {
  sessions_.push_back(&session);
  std::size_t n = held_wakes_.size();
  for (auto& held : held_wakes_) session.queue_wake(std::move(held.item));
  held_wakes_.clear();
  daemon_.held_removed(n);
  for (auto& held : held_closed_) session.queue_closed(held.record);
  held_closed_.clear();
}

void Pool::detach(ControlSession& session) {
  std::erase(sessions_, &session);
  daemon_.pool_may_be_idle(*this);
}

ControlSession* Pool::least_loaded_session() {
  std::size_t n = sessions_.size();
  if (n == 0) return nullptr;
  // Scan from just after the last choice, so that equally loaded sessions take turns.
  std::size_t best = next_session_ % n;
  for (std::size_t k = 1; k < n; ++k) {
    std::size_t i = (next_session_ + k) % n;
    if (sessions_[i]->load() < sessions_[best]->load()) best = i;
  }
  next_session_ = best + 1;
  return sessions_[best];
}

void Pool::deliver(WakeItem item) {
  if (ControlSession* s = least_loaded_session()) {
    s->queue_wake(std::move(item));
    return;
  }
  if (daemon_.shutting_down()) {
    item.fd.reset();
    daemon_.fds_released(1);
    daemon_.counters().count(CloseReason::shutdown);
    return;
  }
  held_wakes_.push_back({std::move(item), daemon_.now()});
  daemon_.held_added();
}

void Pool::deliver(protocol::CloseRecord record) {
  if (ControlSession* s = least_loaded_session()) {
    s->queue_closed(record);
  } else if (!daemon_.shutting_down()) {
    held_closed_.push_back({record, daemon_.now()});
  }
}

void Pool::close_held_wake(HeldWake& held, CloseReason reason) {
  if (!held.item.fd) return;
  held.item.fd.reset();
  daemon_.fds_released(1);
  daemon_.counters().count(reason);
}

std::uint64_t Pool::expire_held(std::uint64_t now) {
  auto grace = static_cast<std::uint64_t>(daemon_.config().owner_grace.count());
  std::size_t expired = 0;
  while (!held_wakes_.empty() && held_wakes_.front().since + grace <= now) {
    close_held_wake(held_wakes_.front(), CloseReason::owner_gone);
    held_wakes_.pop_front();
    ++expired;
  }
  daemon_.held_removed(expired);
  while (!held_closed_.empty() && held_closed_.front().since + grace <= now) held_closed_.pop_front();
  if (expired != 0 || held_wakes_.empty()) daemon_.pool_may_be_idle(*this);
  std::uint64_t next = 0;
  if (!held_wakes_.empty()) next = held_wakes_.front().since + grace;
  if (!held_closed_.empty()) {
    std::uint64_t c = held_closed_.front().since + grace;
    next = next == 0 ? c : std::min(next, c);
  }
  return next;
}

}  // namespace parker::daemon
