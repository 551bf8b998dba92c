#include "pool.hpp"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include <sys/socket.h>

#include <cerrno>

#include "control_session.hpp"
#include "write_through.hpp"
#include "keeper_link.hpp"

namespace parker::daemon {

using protocol::CloseReason;
using protocol::KeepOp;
using protocol::RejectReason;
using protocol::WakeReason;

Pool::Pool(CoreContext& core, std::string name, uid_t owner_uid)
    : core_(core), name_(std::move(name)), owner_uid_(owner_uid), number_(core.table.add_pool(*this)),
      parked_(core.table) {}

Pool::~Pool() {
  // The daemon destroys only idle pools; a test may drop one with connections still parked.
  // Their fds close quietly: the daemon around may be going too, so no registry calls.
  for (int fd : parked_.fds()) {
    ParkedSocket& s = core_.table[static_cast<std::uint32_t>(fd)];
    core_.deadlines.cancel(s);
    core_.watcher.remove(fd);
    parked_.erase(s);
    (void)core_.table.erase(s);
  }
  for (auto& held : held_wakes_) close_held_wake(held, CloseReason::shutdown);
  core_.table.remove_pool(number_);
}

bool Pool::idle() const noexcept {
  return parked_.empty() && sessions_.empty() && held_wakes_.empty() &&
         held_closed_.empty();
}

// ---- parking ---------------------------------------------------------------------------

std::optional<RejectReason> Pool::park(const protocol::ParkRecord& record, UniqueFd& fd) {
  const Config& config = core_.config;
  if (core_.shutting_down()) return RejectReason::shutting_down;
  if (record.blob.size() > config.max_blob) return RejectReason::blob_too_big;
  // An owner that checked says so (1.4): the check costs a syscall, a third of a park's own
  // work; done once, where the fd came from, not twice. An owner that says so wrongly only
  // hurts itself: the kernel refuses to watch a regular file (watch_failed), and a pipe or
  // the like is handed back at its first event (probe_socket).
  if ((record.flags & protocol::kSocketChecked) == 0) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISSOCK(st.st_mode)) return RejectReason::not_socket;
  }
  if (parked_.contains(record.id)) return RejectReason::duplicate_id;
  if (config.max_parked_per_owner != 0 && parked_.size() >= config.max_parked_per_owner) {
    return RejectReason::quota_owner;
  }
  if (core_.totals.parked >= core_.totals.max_parked) return RejectReason::quota_total;

  const int raw_fd = fd.get();
  // Watched first: if the kernel refuses, nothing else has changed and the fd is the caller's.
  if (core_.watcher.add(raw_fd).failed()) return RejectReason::watch_failed;
  ParkedSocket* record_slot = core_.table.insert(fd, record.id, number_);
  if (record_slot == nullptr) {
    // Beyond the table (RLIMIT_NOFILE raised from outside since start-up): refused like a
    // socket the kernel would not watch.
    core_.watcher.remove(raw_fd);
    return RejectReason::watch_failed;
  }
  ParkedSocket& s = *record_slot;
  parked_.insert(s);
  s.flags = record.flags & protocol::kKnownParkFlags11;  // the keep-alive set rides in the high nibble
  s.parked_at = ParkedSocket::centiseconds(core_.now());
  s.set_blob(record.blob);
  blob_bytes_ += record.blob.size();
  if (record.deadline_ms != 0) {
    s.deadline = std::min(core_.now() + record.deadline_ms, ParkedSocket::kMaxDeadline);
    core_.deadlines.schedule(s);
  }
  ++core_.totals.parked;
  core_.totals.blob_bytes += record.blob.size();
  if (core_.keeper != nullptr) core_.keeper->kept(handover_record(s), raw_fd);
  // A socket with data already waiting comes back at once: the watcher is level-triggered,
  // so its next wait reports it readable.
  return std::nullopt;
}

// Two passes: every socket out of the kernel's readiness set first, in one tight loop, then
// the records. Interleaved, each EPOLL_CTL_DEL ran with the kernel's socket, file and epoll
// structures pushed out of the cache by parker's own work on the previous record; done
// together they cost parker about a tenth less CPU per wake (a RECALL of thousands is how an
// owner takes its connections back before a restart).
void Pool::recall(std::span<const std::uint64_t> ids, std::vector<std::uint64_t>& not_parked) {
  for (std::uint64_t id : ids) {
    if (ParkedSocket* s = parked_.find(id)) core_.watcher.remove(core_.table.fd_of(*s));
  }
  for (std::uint64_t id : ids) {
    ParkedSocket* s = parked_.find(id);
    if (s == nullptr) {
      not_parked.push_back(id);  // never parked, or named twice (woken by the first)
      continue;
    }
    wake(*s, WakeReason::recalled, {}, /*watched=*/false);
  }
}

bool Pool::let_go_unconfirmed(std::uint64_t id) {
  ParkedSocket* s = parked_.find(id);
  if (s == nullptr) return false;
  UniqueFd fd = retire(*s);
  tell_keeper(KeepOp::forget, id);
  fd.reset();  // the owner's copy lives on
  return true;
}

std::vector<std::uint64_t> Pool::parked_ids() const {
  std::vector<std::uint64_t> ids;
  ids.reserve(parked_.size());
  parked_.for_each([&](const ParkedSocket& s) { ids.push_back(s.id); });
  return ids;
}

std::optional<protocol::InventoryRecord> Pool::inventory_record(std::uint64_t id) const {
  const ParkedSocket* s = parked_.find(id);
  if (s == nullptr) return std::nullopt;
  protocol::InventoryRecord r;
  r.id = id;
  r.state = protocol::InventoryState::parked;
  r.flags = static_cast<std::uint8_t>(s->flags);
  r.deadline_left_ms = deadline_left_ms(*s);
  r.blob = s->blob_view();
  return r;
}

bool Pool::drop(std::uint64_t id) {
  ParkedSocket* s = parked_.find(id);
  if (s == nullptr) return false;
  close_socket(*s, CloseReason::dropped);
  return true;
}

void Pool::deadline_passed(ParkedSocket& socket) {
  if (socket.partial) {
    // The rest of a keep-alive request did not come in time: the owner reads what did.
    wake(socket, WakeReason::readable);
    return;
  }
  if ((socket.flags & ParkedSocket::wake_on_deadline) != 0) {
    wake(socket, WakeReason::deadline);
  } else {
    std::uint64_t id = socket.id;
    close_socket(socket, CloseReason::deadline);  // erases `socket`
    deliver(protocol::CloseRecord{id, CloseReason::deadline});
  }
}

void Pool::shutdown() {
  bool has_session = !sessions_.empty();
  for (int fd : parked_.fds()) {  // retiring takes each out of the index
    ParkedSocket& s = core_.table[static_cast<std::uint32_t>(fd)];
    if (has_session) {
      wake(s, WakeReason::shutdown);
    } else {
      close_socket(s, CloseReason::shutdown);
    }
  }
  if (!has_session) {
    for (auto& held : held_wakes_) close_held_wake(held, CloseReason::shutdown);
    core_.totals.held -= held_wakes_.size();
    held_wakes_.clear();
    held_closed_.clear();
  }
}

// ---- hand-over to a successor parker ------------------------------------------------------

void Pool::take_for_handover(std::vector<HandoverItem>& out, std::vector<protocol::HandoverClosed>& closed) {
  for (int fd : parked_.fds()) {
    ParkedSocket& s = core_.table[static_cast<std::uint32_t>(fd)];
    HandoverItem item;
    item.record = handover_record(s);
    item.fd = retire(s, /*ended=*/false);  // erases `s`
    out.push_back(std::move(item));
  }
  for (HeldWake& held : held_wakes_) {
    HandoverItem item;
    item.record = handover_record(held);
    item.fd = std::move(held.item.fd);
    out.push_back(std::move(item));
  }
  core_.totals.held -= held_wakes_.size();
  held_wakes_.clear();
  for (const HeldClose& c : held_closed_) {
    closed.push_back({name_, static_cast<std::uint32_t>(owner_uid_), c.record.id, c.record.reason});
  }
  held_closed_.clear();
  core_.registry.pool_may_be_idle(*this);
}

bool Pool::adopt(HandoverItem& item) {
  const protocol::HandoverRecord& r = item.record;
  if (r.kind == protocol::HandoverKind::parked) {
    return !park(protocol::ParkRecord{r.id, r.deadline_left_ms, r.flags, r.blob}, item.fd).has_value();
  }
  if (r.kind != protocol::HandoverKind::held || !item.fd) return false;
  WakeItem wake;
  wake.record = {r.id, static_cast<WakeReason>(r.flags), r.blob, r.unsent};
  wake.fd = std::move(item.fd);
  wake.woken_ns = uv_hrtime();
  deliver(std::move(wake));
  return true;
}

// ---- events on parked sockets -----------------------------------------------------------

void Pool::socket_event(ParkedSocket& s, bool error) {
  SocketEvent event = probe_socket(core_.table.fd_of(s));
  // An error condition that a peek does not show would be reported again and again by the
  // level-triggered watcher: settle it now.
  if (event == SocketEvent::spurious) {
    if (!error) return;
    event = SocketEvent::error;
  }
  bool hand_back_hangup = (s.flags & ParkedSocket::wake_on_hangup) != 0;
  switch (event) {
    case SocketEvent::readable:
      if (protocol::keepalive_set_of(static_cast<std::uint8_t>(s.flags)) != 0 && keepalive(s)) break;
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

// ---- 1.1: write-through and keep-alive replies ----------------------------------------------

bool Pool::write(std::uint64_t id, std::string_view payload) {
  ParkedSocket* found = parked_.find(id);
  if (found == nullptr) return false;
  ParkedSocket& s = *found;
  WriteOutcome out = write_nonblocking(core_.table.fd_of(s), payload);
  ++core_.counters.writes_total;
  core_.counters.write_bytes_total += out.sent;
  // A peer that is gone will never read the rest; its hang-up comes through the readiness
  // set as usual (CLOSED hangup, or WAKE hangup).
  if (out.sent < payload.size() && !out.peer_gone) wake(s, WakeReason::write_blocked, payload.substr(out.sent));
  return true;
}

void Pool::declare_rules(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules) {
  keepalive_.declare(set, std::move(rules));
}

bool Pool::keepalive(ParkedSocket& s) {
  const int fd = core_.table.fd_of(s);
  char waiting[protocol::kMaxKeepaliveRequest + 1];
  ssize_t n;
  do {
    n = ::recv(fd, waiting, sizeof waiting, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;  // probe_socket saw data: let the wake path sort it out
  auto set = protocol::keepalive_set_of(static_cast<std::uint8_t>(s.flags));
  KeepaliveRules::Result result = keepalive_.match(set, {waiting, static_cast<std::size_t>(n)});
  if (result.match == KeepaliveRules::Match::none) return false;
  if (result.match == KeepaliveRules::Match::partial) {
    if (s.partial) return true;  // still waiting, on the first partial match's clock
    // Edge-triggered until it is settled, else the bytes already there would be reported
    // on every loop iteration.
    if (core_.watcher.set_edge_triggered(fd, true).failed()) return false;
    partial_deadlines_[s.id] = s.deadline;
    core_.deadlines.cancel(s);
    s.deadline = core_.now() + kKeepalivePartialWaitMs;
    core_.deadlines.schedule(s);
    s.partial = 1;
    ++core_.counters.keepalive_partial_total;
    return true;
  }
  // Exactly a request: consume exactly its bytes (the peek showed nothing more), answer.
  const protocol::KeepaliveRule& rule = *result.rule;
  ssize_t got;
  do {
    got = ::recv(fd, waiting, rule.request.size(), MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(rule.request.size())) {
    // Cannot happen while parker holds the only reader; if it does, the owner sorts it out.
    spdlog::warn("pool {}: keep-alive consume of id {} read {} of {} bytes", name_, s.id, got, rule.request.size());
    wake(s, WakeReason::readable);
    return true;
  }
  if (s.partial) end_partial_wait(s);
  ++core_.counters.keepalive_replies_total;
  WriteOutcome out = write_nonblocking(fd, rule.reply);
  core_.counters.write_bytes_total += out.sent;
  if (out.sent < rule.reply.size() && !out.peer_gone) {
    wake(s, WakeReason::write_blocked, std::string_view(rule.reply).substr(out.sent));
  }
  return true;
}

void Pool::end_partial_wait(ParkedSocket& s) {
  s.partial = 0;
  (void)core_.watcher.set_edge_triggered(core_.table.fd_of(s), false);
  core_.deadlines.cancel(s);
  s.deadline = 0;
  auto it = partial_deadlines_.find(s.id);
  if (it != partial_deadlines_.end()) {
    s.deadline = it->second;
    partial_deadlines_.erase(it);
  }
  if (s.deadline != 0) core_.deadlines.schedule(s);
}

void Pool::wake(ParkedSocket& s, WakeReason reason, std::string_view unsent, bool watched) {
  WakeItem item;
  item.record.id = s.id;
  item.record.reason = reason;
  item.record.blob = s.blob_view();
  item.record.unsent = unsent;
  item.fd = retire(s, /*ended=*/true, watched);  // erases `s`
  item.woken_ns = uv_hrtime();
  // Woken write_blocked, the keeper keeps the unsent bytes with its copy: should parker die
  // before the owner's ACK, the next parker hands the owner the same WAKE_UNSENT.
  tell_keeper(unsent.empty() ? KeepOp::woken : KeepOp::woken_unsent, item.record.id, unsent);
  core_.counters.count(reason);
  deliver(std::move(item));
}

void Pool::close_socket(ParkedSocket& s, CloseReason reason) {
  const std::uint64_t id = s.id;
  UniqueFd fd = retire(s);  // erases `s`
  tell_keeper(KeepOp::forget, id);
  fd.reset();
  core_.fds_released(1);
  core_.counters.count(reason);
}

UniqueFd Pool::retire(ParkedSocket& s, bool ended, bool watched) {
  if (s.partial) partial_deadlines_.erase(s.id);
  core_.deadlines.cancel(s);
  // Out of the kernel's readiness set before the fd is closed or handed away: a
  // registration outlives our fd while the owner's copy of the same file stays open.
  if (watched) core_.watcher.remove(core_.table.fd_of(s));
  if (ended) core_.counters.time_parked.observe(s.seconds_parked(core_.now()));
  blob_bytes_ -= s.blob_size();
  --core_.totals.parked;
  core_.totals.blob_bytes -= s.blob_size();
  parked_.erase(s);
  UniqueFd fd = core_.table.erase(s);  // the record is gone; its fd is ours
  // Only the last parked connection can leave the pool idle: not a name copied per wake.
  if (parked_.empty()) core_.registry.pool_may_be_idle(*this);
  return fd;
}

// ---- sessions and delivery ----------------------------------------------------------------

void Pool::attach(ControlSession& session) {
  sessions_.push_back(&session);
  // A wake carrying unsent bytes waits for a 1.1 session: 1.0 has no way to say them.
  const bool minor_1 = session.minor() >= protocol::kMinorExactlyOnce;
  std::size_t before = held_wakes_.size();
  std::erase_if(held_wakes_, [&](HeldWake& held) {
    if (!minor_1 && !held.item.record.unsent.empty()) return false;
    session.queue_wake(std::move(held.item));
    return true;
  });
  core_.totals.held -= before - held_wakes_.size();
  for (auto& held : held_closed_) session.queue_closed(held.record);
  held_closed_.clear();
}

void Pool::detach(ControlSession& session) {
  std::erase(sessions_, &session);
  core_.registry.pool_may_be_idle(*this);
}

ControlSession* Pool::least_loaded_session(bool minor_1) {
  std::size_t n = sessions_.size();
  if (n == 0) return nullptr;
  auto eligible = [&](std::size_t i) { return !minor_1 || sessions_[i]->minor() >= protocol::kMinorExactlyOnce; };
  // Scan from just after the last choice, so that equally loaded sessions take turns.
  std::size_t best = n;
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (next_session_ + k) % n;
    if (eligible(i) && (best == n || sessions_[i]->load() < sessions_[best]->load())) best = i;
  }
  if (best == n) return nullptr;
  next_session_ = best + 1;
  return sessions_[best];
}

void Pool::deliver(WakeItem item) {
  if (ControlSession* s = least_loaded_session(!item.record.unsent.empty())) {
    s->queue_wake(std::move(item));
    return;
  }
  if (core_.shutting_down()) {
    tell_keeper(KeepOp::forget_woken, item.record.id);
    item.fd.reset();
    core_.fds_released(1);
    core_.counters.count(CloseReason::shutdown);
    return;
  }
  held_wakes_.push_back({std::move(item), core_.now()});
  ++core_.totals.held;
  core_.registry.held_added();
}

void Pool::deliver(protocol::CloseRecord record) {
  if (ControlSession* s = least_loaded_session()) {
    s->queue_closed(record);
  } else if (!core_.shutting_down()) {
    held_closed_.push_back({record, core_.now()});
  }
}

void Pool::close_held_wake(HeldWake& held, CloseReason reason) {
  if (!held.item.fd) return;
  tell_keeper(KeepOp::forget_woken, held.item.record.id);
  held.item.fd.reset();
  core_.fds_released(1);
  core_.counters.count(reason);
}

std::uint64_t Pool::expire_held(std::uint64_t now) {
  auto grace = static_cast<std::uint64_t>(core_.config.owner_grace.count());
  std::size_t expired = 0;
  while (!held_wakes_.empty() && held_wakes_.front().since + grace <= now) {
    close_held_wake(held_wakes_.front(), CloseReason::owner_gone);
    held_wakes_.pop_front();
    ++expired;
  }
  core_.totals.held -= expired;
  while (!held_closed_.empty() && held_closed_.front().since + grace <= now) held_closed_.pop_front();
  if (expired != 0 || held_wakes_.empty()) core_.registry.pool_may_be_idle(*this);
  std::uint64_t next = 0;
  if (!held_wakes_.empty()) next = held_wakes_.front().since + grace;
  if (!held_closed_.empty()) {
    std::uint64_t c = held_closed_.front().since + grace;
    next = next == 0 ? c : std::min(next, c);
  }
  return next;
}

}  // namespace parker::daemon

namespace parker::daemon {

void Pool::tell_keeper(protocol::KeepOp op, std::uint64_t id, std::string_view unsent) {
  if (core_.keeper != nullptr) core_.keeper->update(op, name_, id, unsent);
}

void Pool::send_all_to_keeper(KeeperLink& keeper) const {
  parked_.for_each([&](const ParkedSocket& s) { keeper.kept(handover_record(s), core_.table.fd_of(s)); });
  for (const HeldWake& held : held_wakes_) {
    if (held.item.fd) keeper.kept(handover_record(held), held.item.fd.get());
  }
}

// What is left of its own deadline (0: none; at least 1), not of a keep-alive partial wait.
std::uint32_t Pool::deadline_left_ms(const ParkedSocket& s) const {
  std::uint64_t deadline = s.deadline;
  if (s.partial) {
    auto it = partial_deadlines_.find(s.id);
    deadline = it == partial_deadlines_.end() ? 0 : it->second;
  }
  if (deadline == 0) return 0;
  const std::uint64_t now = core_.now();
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(deadline > now ? deadline - now : 1, 1, UINT32_MAX));
}

protocol::HandoverRecord Pool::handover_record(const ParkedSocket& s) const {
  return {protocol::HandoverKind::parked, name_, static_cast<std::uint32_t>(owner_uid_), s.id,
          static_cast<std::uint8_t>(s.flags), deadline_left_ms(s), std::string(s.blob_view()), {}};
}

protocol::HandoverRecord Pool::handover_record(const HeldWake& held) const {
  return {protocol::HandoverKind::held, name_, static_cast<std::uint32_t>(owner_uid_), held.item.record.id,
          static_cast<std::uint8_t>(held.item.record.reason), 0, held.item.record.blob, held.item.record.unsent};
}

}  // namespace parker::daemon
