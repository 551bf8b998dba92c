#include "daemon.hpp"

#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "control_session.hpp"
#include "keeper_link.hpp"
#include "parker/peer_credentials.hpp"
#include "parker/unix_socket.hpp"
#include "pool.hpp"

namespace parker::daemon {
namespace {

constexpr std::uint32_t kMaxCreditWindow = 2048;
// With many owner sessions the window shrinks to a fair share of the budget, down to this.
constexpr std::uint32_t kMinCreditWindow = 8;
// How often peers that never said HELLO are looked for.
constexpr std::uint64_t kHelloSweepMs = 250;

template <class Handle>
uv_handle_t* as_handle(Handle* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

}  // namespace

Daemon::Daemon(uv_loop_t* loop, Config config, std::size_t fd_limit, std::function<void()> reopen_log)
    : loop_(loop),
      config_(std::move(config)),
      capacity_(fd_limit),
      reopen_log_(std::move(reopen_log)),
      table_(fd_limit) {
  capacity_.cap_budget(config_.max_parked);
  totals_.max_parked = capacity_.budget();
}

Daemon::~Daemon() = default;

// ---- start and stop ------------------------------------------------------------------------

Error Daemon::start() {
  const std::string& path = config_.socket_path;
  if (::geteuid() == 0 && path == "/run/parker/parker.sock") {
    std::error_code ec;
    std::filesystem::create_directories("/run/parker", ec);
    (void)::chmod("/run/parker", 0755);
  }
  if (Error e = watcher_.open(loop_, on_socket_ready, &table_); e.failed()) return e;
  auto on_peer = [this](UniqueFd peer) { new_session(std::move(peer)); };
  const bool adopted = adopted_listener_.valid();
  Error listened = adopted ? listener_.adopt(loop_, std::move(adopted_listener_), path, on_peer, counters_.accept_emfile_total)
                           : listener_.start(loop_, path, config_.socket_mode, on_peer, counters_.accept_emfile_total);
  if (Error e = listened; e.failed()) {
    watcher_.close();
    return e;
  }
  if (listener_taken_over_) listener_.claim_path(path);

  deadlines_.open(loop_, [this](ParkedSocket& s) { table_.pool_of(s).deadline_passed(s); });
  uv_timer_init(loop_, &grace_timer_);
  uv_timer_init(loop_, &shutdown_timer_);
  uv_timer_init(loop_, &hello_timer_);
  grace_timer_.data = shutdown_timer_.data = hello_timer_.data = this;
  uv_timer_start(&hello_timer_, on_hello_timer, kHelloSweepMs, kHelloSweepMs);
  uv_timer_init(loop_, &keeper_timer_);
  keeper_timer_.data = this;
  start_keeper();
  uv_check_init(loop_, &flush_check_);
  uv_prepare_init(loop_, &flush_prepare_);
  flush_check_.data = this;
  flush_prepare_.data = this;
  uv_check_start(&flush_check_, on_flush);
  uv_prepare_start(&flush_prepare_, on_prepare);
  uv_signal_init(loop_, &sigterm_);
  uv_signal_init(loop_, &sigint_);
  uv_signal_init(loop_, &sighup_);
  sigterm_.data = sigint_.data = sighup_.data = this;
  if (config_.handle_signals) {
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sighup_, on_signal, SIGHUP);
  }
  handles_open_ = true;
  spdlog::info("listening on {}{}", path,
               listener_taken_over_ ? " (socket taken over)" : adopted ? " (socket from systemd)" : "");
  spdlog::info("fd limit {}: room for {} parked connections (max parked {}), max blob {} bytes, owner grace {} ms",
               capacity_.fd_limit(), capacity_.budget(), totals_.max_parked, config_.max_blob,
               config_.owner_grace.count());
  return {};
}

int Daemon::run() {
  uv_run(loop_, UV_RUN_DEFAULT);
  return 0;
}

void Daemon::request_shutdown() {
  if (totals_.stopping) {
    spdlog::info("second stop request: closing everything now");
    stop_now();
    return;
  }
  totals_.stopping = true;
  if (on_stopping_) on_stopping_();
  spdlog::info("shutting down: handing {} parked connections back to their owners", totals_.parked);
  listener_.stop();
  for (auto& [name, pool] : pools_) pool->shutdown();
  for (ControlSession* s : std::vector<ControlSession*>(sessions_.begin(), sessions_.end())) s->finish();
  shutdown_began_ms_ = uv_now(loop_);
  shutdown_bytes_seen_ = totals_.bytes_to_owners;
  uv_timer_start(&shutdown_timer_, on_shutdown_timer, static_cast<std::uint64_t>(config_.shutdown_flush.count()), 0);
  maybe_finish_shutdown();
}

void Daemon::maybe_finish_shutdown() {
  if (totals_.stopping && !stopped_ && sessions_.empty()) stop_now();
}

void Daemon::stop_now() {
  if (stopped_) return;
  stopped_ = true;
  totals_.stopping = true;
  listener_.stop();
  // Sessions still writing after the flush time: what they could not send is closed.
  for (ControlSession* s : std::vector<ControlSession*>(sessions_.begin(), sessions_.end())) s->close();
  for (auto& [name, pool] : pools_) pool->shutdown();
  spdlog::info("stopped: {} wakes, {} closes, {} parks in total", [&] {
    std::uint64_t n = 0;
    for (auto v : counters_.wakes) n += v;
    return n;
  }(), [&] {
    std::uint64_t n = 0;
    for (auto v : counters_.closed) n += v;
    return n;
  }(), counters_.parks_total);
  if (keeper_) {
    // Everything went back to its owners or closed: the keeper may go. After a hand-over it
    // stays, for the successor.
    if (!handed_over_) keeper_->bye();
    keeper_->close();
  }
  close_handles();
}

void Daemon::close_handles() {
  if (!handles_open_) return;
  handles_open_ = false;
  for (uv_handle_t* h : {as_handle(&sigterm_), as_handle(&sigint_), as_handle(&sighup_),
                         as_handle(&grace_timer_), as_handle(&shutdown_timer_),
                         as_handle(&hello_timer_), as_handle(&keeper_timer_),
                         as_handle(&flush_check_), as_handle(&flush_prepare_)}) {
    uv_close(h, nullptr);
  }
  deadlines_.close();
  watcher_.close();
}

void Daemon::on_socket_ready(void* context, int fd, bool error) noexcept {
  auto& table = *static_cast<ParkedTable*>(context);
  ParkedSocket& socket = table[static_cast<std::uint32_t>(fd)];
  table.pool_of(socket).socket_event(socket, error);
}

// ---- signals and timers --------------------------------------------------------------------

void Daemon::on_signal(uv_signal_t* handle, int signum) noexcept {
  auto* self = static_cast<Daemon*>(handle->data);
  if (signum == SIGHUP) {
    spdlog::info("SIGHUP: reopening the log");
    if (self->reopen_log_) {
      self->reopen_log_();
      spdlog::info("log reopened");
    }
    return;
  }
  spdlog::info("{}: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  self->request_shutdown();
}

// What is still queued for an owner when parker stops includes WAKE frames, whose fds are
// the only copies of those clients: an owner that is slow but reading (a busy server, a
// big backlog of blobs) is waited for. One that took nothing for a whole shutdown_flush is
// not reading, and shutdown_limit bounds the wait in all.
void Daemon::on_shutdown_timer(uv_timer_t* handle) noexcept {
  auto* self = static_cast<Daemon*>(handle->data);
  const Config& config = self->config_;
  const std::uint64_t waited = uv_now(self->loop_) - self->shutdown_began_ms_;
  const bool reading = self->totals_.bytes_to_owners != self->shutdown_bytes_seen_;
  if (reading && waited < static_cast<std::uint64_t>(config.shutdown_limit.count())) {
    self->shutdown_bytes_seen_ = self->totals_.bytes_to_owners;
    spdlog::debug("shutdown: {} session(s) still reading their output after {} ms; waiting", self->sessions_.size(),
                  waited);
    uv_timer_start(&self->shutdown_timer_, on_shutdown_timer, static_cast<std::uint64_t>(config.shutdown_flush.count()),
                   0);
    return;
  }
  if (reading) {
    spdlog::warn("shutdown: {} session(s) still had output after {} ms in all; closing them (what they did not "
                 "read is closed)", self->sessions_.size(), waited);
  } else {
    spdlog::warn("shutdown: {} session(s) read none of their output for {} ms; closing them (what they did not "
                 "read is closed)", self->sessions_.size(), config.shutdown_flush.count());
  }
  self->stop_now();
}

void Daemon::on_hello_timer(uv_timer_t* handle) noexcept { static_cast<Daemon*>(handle->data)->drop_silent_peers(); }

// A peer that connects and never says HELLO would keep a descriptor slot (and shrink the
// budget) for ever.
void Daemon::drop_silent_peers() {
  auto timeout = static_cast<std::uint64_t>(config_.hello_timeout.count());
  std::uint64_t now = uv_now(loop_);
  std::vector<ControlSession*> silent;
  for (ControlSession* s : sessions_) {
    if (s->awaiting_hello() && s->connected_at() + timeout <= now) silent.push_back(s);
  }
  for (ControlSession* s : silent) {
    ++counters_.hello_timeouts_total;
    spdlog::debug("session {}: no HELLO within {} ms; dropping it", s->id(), timeout);
    s->fail(protocol::ErrorCode::hello_required, fmt::format("no HELLO within {} ms", timeout));
  }
}

void Daemon::held_added() {
  // Every new hold expires after all earlier ones: only an idle timer needs arming.
  if (handles_open_ && !uv_is_active(as_handle(&grace_timer_))) {
    uv_timer_start(&grace_timer_, on_grace_timer, static_cast<std::uint64_t>(config_.owner_grace.count()), 0);
  }
}

void Daemon::on_grace_timer(uv_timer_t* handle) noexcept { static_cast<Daemon*>(handle->data)->sweep_held(); }

void Daemon::sweep_held() {
  std::uint64_t now = uv_now(loop_);
  std::uint64_t next = 0;
  for (auto& [name, pool] : pools_) {
    std::uint64_t t = pool->expire_held(now);
    if (t != 0) next = next == 0 ? t : std::min(next, t);
  }
  if (next != 0 && handles_open_) uv_timer_start(&grace_timer_, on_grace_timer, next > now ? next - now : 0, 0);
}

// ---- peers ---------------------------------------------------------------------------------

bool Daemon::peer_allowed(uid_t uid, gid_t gid) const {
  if (uid == 0 || uid == ::geteuid()) return true;
  if (std::find(config_.allowed_uids.begin(), config_.allowed_uids.end(), uid) != config_.allowed_uids.end()) {
    return true;
  }
  return std::find(config_.allowed_gids.begin(), config_.allowed_gids.end(), gid) != config_.allowed_gids.end();
}

void Daemon::new_session(UniqueFd fd) {
  // A session takes a descriptor slot. Room already promised — credit granted, one frame's
  // fds for the next read — is not given away to a newcomer: it is turned away instead
  // (it may retry), rather than leave an owner's parks stuck in its socket.
  // (Sessions within the reserve were counted in the budget; credit 1.1 owners hold can be
  // reclaimed for the newcomer.)
  std::size_t reclaimable = 0;
  for (ControlSession* s : sessions_) {
    if (s->minor() >= protocol::kMinorExactlyOnce) reclaimable += s->credit();
  }
  std::size_t promised = capacity_.credit() - std::min(reclaimable, capacity_.credit());
  if (capacity_.sessions() >= capacity_.session_reserve() &&
      capacity_.free_slots() < promised + capacity_.read_headroom() + 1) {
    ++counters_.peers_refused_for_room_total;
    if (counters_.peers_refused_for_room_total == 1 || counters_.peers_refused_for_room_total % 1000 == 0) {
      spdlog::warn("no descriptor room for another session ({} free, {} promised as credit): refusing peers "
                   "({} so far)", capacity_.free_slots(), promised, counters_.peers_refused_for_room_total);
    }
    return;  // closes it
  }
  // Admitted on credit 1.1 owners hold: ask them for it now, before they use it.
  std::size_t needed = capacity_.credit() + capacity_.read_headroom() + 2;
  if (capacity_.sessions() >= capacity_.session_reserve() && capacity_.free_slots() < needed) {
    std::size_t short_by = needed - capacity_.free_slots();
    for (ControlSession* s : sessions_) {
      if (short_by == 0) break;
      if (s->minor() < protocol::kMinorExactlyOnce || s->credit() == 0) continue;
      std::uint32_t take = static_cast<std::uint32_t>(std::min<std::size_t>(short_by, s->credit()));
      s->reclaim_credit_above(s->credit() - take);
      short_by -= take;
    }
  }
  auto creds = peer_credentials(fd.get());
  auto* session = new ControlSession(core_, std::move(fd), creds.value, next_session_id_++);
  if (Error e = session->start(); e.failed()) {
    spdlog::error("cannot watch a new session: {}", describe(e));
    delete session;
    return;
  }
  sessions_.insert(session);
  peak_sessions_ = std::max(peak_sessions_, sessions_.size());
  capacity_.session_opened();
  ++counters_.sessions_total;
  if (!creds.ok()) {
    spdlog::warn("refused a peer: cannot read its credentials: {}", describe(creds.error));
    session->fail(protocol::ErrorCode::not_allowed, "parker cannot read this peer's credentials");
  } else if (!peer_allowed(creds.value.uid, creds.value.gid)) {
    spdlog::warn("refused peer uid {} gid {} pid {}: not allowed", creds.value.uid, creds.value.gid, creds.value.pid);
    session->fail(protocol::ErrorCode::not_allowed,
                  fmt::format("uid {} gid {} is not allowed to use this parker", creds.value.uid, creds.value.gid));
  } else {
    spdlog::debug("session {}: connected (uid {}, pid {})", session->id(), creds.value.uid, creds.value.pid);
  }
}

void Daemon::session_closing(ControlSession& session, bool was_owner) {
  sessions_.erase(&session);
  if (handover_ && handover_->to == &session) handover_failed();
  std::erase(paused_for_room_, &session);
  if (session.dirty) std::erase(dirty_, &session);
  session.dirty = false;
  capacity_.session_closed();
  if (was_owner) --owner_sessions_;
  credit_dirty_ = true;
  give_back_memory_after_churn();
  maybe_finish_shutdown();
}

// Thousands of peers coming and going leave glibc holding their freed buffers (tens of MB
// that RSS keeps showing). Once the sessions fall below half their recent peak, trim — at
// most every few seconds: it walks the whole heap.
void Daemon::give_back_memory_after_churn() {
  constexpr std::size_t kMinPeak = 256;
  constexpr std::uint64_t kMinIntervalMs = 5000;
  peak_sessions_ = std::max(peak_sessions_, sessions_.size() + 1);
  if (peak_sessions_ < kMinPeak || sessions_.size() > peak_sessions_ / 2) return;
  std::uint64_t now = uv_now(loop_);
  if (last_trim_ != 0 && now - last_trim_ < kMinIntervalMs) return;
  last_trim_ = now;
  peak_sessions_ = sessions_.size();
#if defined(__GLIBC__)
  (void)::malloc_trim(0);
#endif
}

// ---- pools -------------------------------------------------------------------------------

Pool* Daemon::pool_for(const std::string& name, uid_t uid) {
  auto it = pools_.find(name);
  if (it == pools_.end()) {
    auto pool = std::make_unique<Pool>(core_, name, uid);
    if (!pool->numbered()) {
      spdlog::warn("refused pool '{}': {} pools exist, the most parker keeps", name, ParkedTable::kMaxPools);
      return nullptr;
    }
    it = pools_.emplace(name, std::move(pool)).first;
  }
  if (it->second->owner_uid() != uid) return nullptr;
  return it->second.get();
}

void Daemon::pool_may_be_idle(Pool& pool) { idle_candidates_.push_back(pool.name()); }

void Daemon::paused_for_room(ControlSession& session) {
  ++counters_.paused_for_room_total;
  if (paused_for_room_.empty()) {
    spdlog::warn("out of descriptor room ({} free, fd limit {}): reading owners waits until fds leave parker",
                 capacity_.free_slots(), capacity_.fd_limit());
  }
  paused_for_room_.push_back(&session);
}

void Daemon::resume_paused_sessions() {
  while (!paused_for_room_.empty() && capacity_.room_to_read()) {
    ControlSession* s = paused_for_room_.front();
    paused_for_room_.erase(paused_for_room_.begin());
    s->resume_input();
  }
}

std::uint32_t Daemon::credit_window() const {
  std::size_t share = capacity_.budget() / std::max<std::size_t>(owner_sessions_, 1);
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(share, kMinCreditWindow, kMaxCreditWindow));
}

// ---- the end-of-iteration flush --------------------------------------------------------------

void Daemon::mark_dirty(ControlSession& session) {
  if (session.dirty || session.closed()) return;
  session.dirty = true;
  dirty_.push_back(&session);
}

void Daemon::on_flush(uv_check_t* handle) noexcept { static_cast<Daemon*>(handle->data)->flush(); }
void Daemon::on_prepare(uv_prepare_t* handle) noexcept { static_cast<Daemon*>(handle->data)->flush(); }

void Daemon::flush() {
  // The keeper first: sessions write only what it already knows (keeper_link.hpp).
  if (keeper_) (void)keeper_->flush();
  // Pumping can close a session, whose wakes then go to another session: a few rounds.
  for (int round = 0; round < 8 && (!dirty_.empty() || credit_dirty_); ++round) {
    if (credit_dirty_) {
      distribute_credit();
      resume_paused_sessions();
    }
    std::vector<ControlSession*> batch;
    batch.swap(dirty_);
    for (ControlSession* s : batch) s->dirty = false;
    for (ControlSession* s : batch) s->pump();
  }
  deadlines_.rearm_if_needed();
  if (!idle_candidates_.empty()) {
    std::vector<std::string> names;
    names.swap(idle_candidates_);
    for (const auto& name : names) {
      auto it = pools_.find(name);
      if (it != pools_.end() && it->second->idle()) pools_.erase(it);
    }
  }
}

void Daemon::distribute_credit() {
  credit_dirty_ = false;
  if (capacity_.available() != 0) {
    for (ControlSession* s : sessions_) s->top_up_credit();
  }
  // Fairness: a session short of its share while others sit on more than theirs gets what
  // 1.1 owners give back (RECLAIM / CREDIT_RETURN; 1.0 owners keep what they were granted).
  std::uint32_t share = credit_window();
  bool someone_short = false;
  for (ControlSession* s : sessions_) {
    if (s->wants_credit() && s->credit() + kMinCreditWindow <= share / 2) someone_short = true;
  }
  if (!someone_short) return;
  for (ControlSession* s : sessions_) s->reclaim_credit_above(share);
}

// ---- stats ---------------------------------------------------------------------------------

std::string Daemon::stats_text() const {
  Gauges g;
  g.parked = totals_.parked;
  g.held_wakes = totals_.held;
  g.blob_bytes = totals_.blob_bytes;
  g.owner_sessions = owner_sessions_;
  for (ControlSession* s : sessions_) g.observer_sessions += s->is_observer() ? 1 : 0;
  g.pools = pools_.size();
  g.fd_budget = capacity_.budget();
  g.client_fds = capacity_.client_fds();
  g.credit_outstanding = capacity_.credit();
  for (ControlSession* s : sessions_) {
    g.unacked_wakes += s->unacked_wakes();
    g.output_queued_bytes += s->queued_output_bytes();
  }
  return render_prometheus(counters_, g);
}

std::string Daemon::list_text() const {
  std::vector<PoolLine> lines;
  for (const auto& [name, pool] : pools_) {
    lines.push_back({name, static_cast<unsigned>(pool->owner_uid()), pool->sessions(), pool->parked(), pool->held(),
                     pool->blob_bytes()});
  }
  return render_pool_list(std::move(lines));
}

}  // namespace parker::daemon
