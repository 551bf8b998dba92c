#include "heavy/parking.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "heavy/connection.hpp"
#include "heavy/listener_blob.hpp"

namespace heavy {

namespace {

constexpr std::uint64_t kHandoverScanMs = 10;
constexpr std::uint64_t kHandoverGraceMs = 1000;  // after the deadline: waiting for the last barrier

// Bytes the kernel holds for `fd` that we have not read. A connection just handed back by a
// wake has its request waiting there: when the loop iteration that adopted it took longer
// than park_after (a burst of wakes), it would look quiet to the next scan — which runs
// before the poll phase — and be parked again unread, for ever.
bool has_unread_bytes(int fd) {
  int pending = 0;
  return ::ioctl(fd, FIONREAD, &pending) == 0 && pending > 0;
}

std::string_view as_chars(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace

Parking::Parking(Server& server, ParkingOptions options) : server_(server), options_(std::move(options)) {
  uv_timer_init(server_.loop(), &scan_timer_);
  uv_timer_init(server_.loop(), &phase_timer_);
  scan_timer_.data = phase_timer_.data = this;
  open_handles_ = 2;
  recall_ = [this](std::uint64_t id) {
    if (client_) (void)client_->recall(id);  // ENOTCONN: resent on reconnect (connected())
  };
}

Parking::~Parking() {
  if (open_handles_ != 0) {
    spdlog::critical("heavy::Parking destroyed before close() and the loop ran dry");
    std::abort();
  }
  // Stand-ins still registered would dangle in the channel registry.
  for (auto& [id, stand_in] : parked_) {
    if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in.get(), nullptr);
  }
}

void Parking::start(ListenerReady on_listener) {
  on_listener_ = std::move(on_listener);
  parker::ClientCallbacks cb;
  cb.on_connected = [this](const parker::protocol::Welcome& w) { connected(w); };
  cb.on_disconnected = [this](parker::Error e, std::chrono::milliseconds retry) { disconnected(e, retry); };
  cb.on_wake = [this](parker::WokenConnection w) { woken(std::move(w)); };
  cb.on_closed = [this](std::uint64_t id, parker::protocol::CloseReason r) { closed_by_parker(id, r); };
  cb.on_rejected = [this](parker::RejectedPark p) { rejected(std::move(p)); };
  cb.on_error = [this](const parker::protocol::ErrorMessage& e) { error_from_parker(e); };
  client_ = parker::UvClient::create(server_.loop(), std::move(cb));
  set_scan_interval(std::clamp<std::uint64_t>(options_.park_after_ms / 4, 10, 250));
  uv_timer_start(&phase_timer_, on_phase_timer, options_.startup_timeout_ms, 0);
  if (parker::Error e = client_->connect(options_.socket_path, options_.pool); e.failed()) {
    spdlog::warn("parker at {}: {}; serving without parking", options_.socket_path, parker::describe(e));
    warned_unavailable_ = true;
    decide_listener({});
  }
}

void Parking::set_scan_interval(std::uint64_t ms) noexcept {
  uv_timer_start(&scan_timer_, on_scan, ms, ms);
}

void Parking::close() noexcept {
  if (closed_) return;
  closed_ = true;
  phase_ = Phase::done;
  client_.reset();  // parks not sent yet come back through rejected() now
  listener_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&scan_timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&phase_timer_), on_handle_closed);
}

void Parking::on_handle_closed(uv_handle_t* handle) noexcept { --static_cast<Parking*>(handle->data)->open_handles_; }

void Parking::update_gauge() noexcept { server_.stats().parking.parked_connections = parked_.size(); }

// --- The session with parker ---

void Parking::connected(const parker::protocol::Welcome& welcome) {
  if (warned_unavailable_) {
    spdlog::info("parker at {} is reachable again; parking resumes", options_.socket_path);
    warned_unavailable_ = false;
  } else {
    spdlog::info("parking idle connections with parker at {} (pool {}, after {} ms)", options_.socket_path,
                 options_.pool, options_.park_after_ms);
  }
  // Parks sent on the previous connection reached parker or died with it: either way no
  // REJECTED can come for them any more.
  unconfirmed_.clear();
  barriers_confirmed_ = barriers_sent_;
  if (welcome.parked_in_pool == 0 && !parked_.empty()) {
    // A new parker: the connections the old one held are gone with it.
    spdlog::warn("parker holds none of our {} parked connection(s) any more; forgetting them", parked_.size());
    forget_all_entries();
  }
  for (auto& [id, stand_in] : parked_) {
    if (stand_in && stand_in->wants_recall()) stand_in->recall_again();
  }
  if (phase_ == Phase::starting) {
    if (welcome.parked_in_pool > 0) {
      (void)client_->recall(kListenerParkId);  // a WAKE, or ERROR unknown_id: decided then
    } else {
      decide_listener({});
    }
  }
}

void Parking::disconnected(parker::Error error, std::chrono::milliseconds retry_in) {
  if (!warned_unavailable_) {
    spdlog::warn("parker at {}: {}; serving without parking, retrying in the background (every {} ms at most)",
                 options_.socket_path, parker::describe(error), retry_in.count());
    warned_unavailable_ = true;
  }
  if (phase_ == Phase::starting) decide_listener({});
}

void Parking::error_from_parker(const parker::protocol::ErrorMessage& error) {
  if (error.code == parker::protocol::ErrorCode::unknown_id) {
    if (error.id == kListenerParkId) {
      if (phase_ == Phase::starting) decide_listener({});
    } else if (error.id >= kBarrierIdBase) {
      confirm(error.id - kBarrierIdBase);
    }
    // Otherwise a recall crossed a wake on the wire: nothing to do.
    return;
  }
  spdlog::warn("parker: {} ({})", error.text, parker::protocol::to_string(error.code));
}

// --- Parking ---

void Parking::on_scan(uv_timer_t* timer) noexcept { static_cast<Parking*>(timer->data)->scan(); }

void Parking::scan() {
  if (!client_ || !client_->connected() || phase_ == Phase::done) return;
  const std::uint64_t now = uv_now(server_.loop());
  const std::uint64_t after = phase_ == Phase::handing_over ? 0 : options_.park_after_ms;
  out_of_credit_counted_ = false;
  if (now >= after) {
    try {
      server_.for_each_quiet_since(now - after, [this](Connection& c) { park_one(c); });
    } catch (const std::bad_alloc&) {
      spdlog::warn("out of memory while parking; trying again later");
    }
  }
  if (phase_ == Phase::handing_over && (server_.connection_count() == 0 || handover_deadline_passed_)) {
    park_listener();
  }
  end_batch();
  maybe_finish_handover();
}

void Parking::park_one(Connection& conn) {
  if (!conn.idle() || conn.id() >= kBarrierIdBase || has_unread_bytes(conn.fd())) return;
  if (client_->credit() == 0) {
    if (!out_of_credit_counted_) ++server_.stats().parking.park_failures_total;  // once per scan
    out_of_credit_counted_ = true;
    return;
  }
  const std::uint64_t id = conn.id();
  std::unique_ptr<ParkedSubscriber> stand_in;
  if (conn.session().subscribed()) {
    stand_in = std::make_unique<ParkedSubscriber>(
        id, std::vector<std::string>(conn.session().channels.begin(), conn.session().channels.end()), &recall_);
  }
  const std::size_t max_blob = client_->core().welcome().max_blob;
  DetachResult d = server_.detach_connection(id, stand_in.get(), max_blob == 0 ? SIZE_MAX : max_blob);
  if (!d.detached) {
    ++server_.stats().parking.park_failures_total;
    spdlog::debug("client {}: not parked: {}", id, d.error);
    return;
  }
  std::vector<std::byte>& blob = d.detached->blob;
  if (parker::Error e = client_->park(d.detached->fd, id, as_chars(blob)); e.failed()) {
    ++server_.stats().parking.park_failures_total;
    spdlog::debug("client {}: not parked: {}", id, parker::describe(e));
    AdoptResult back = server_.adopt_connection(std::move(d.detached->fd), blob, stand_in.get());
    if (back.connection == nullptr) {
      spdlog::warn("client {}: cannot serve it again after a failed park ({}); closing it", id, back.error);
      if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in.get(), nullptr);
    }
    return;
  }
  parked_[id] = std::move(stand_in);
  unconfirmed_[id] = Unconfirmed{barriers_sent_, std::move(blob)};
  batch_open_ = true;
  ++server_.stats().parking.parks_total;
  update_gauge();
}

void Parking::end_batch() {
  if (!batch_open_ || !client_) return;
  batch_open_ = false;
  if (client_->recall(kBarrierIdBase + barriers_sent_).ok()) ++barriers_sent_;
}

void Parking::confirm(std::uint64_t barrier) {
  std::erase_if(unconfirmed_, [barrier](const auto& entry) { return entry.second.barrier <= barrier; });
  barriers_confirmed_ = std::max(barriers_confirmed_, barrier + 1);
  maybe_finish_handover();
}

void Parking::rejected(parker::RejectedPark park) {
  if (park.id == kListenerParkId) {
    spdlog::error("parker did not take the listening socket: {}", park.describe());
    listener_ = std::move(park.fd);
    listener_parked_ = false;
    return;
  }
  std::vector<std::byte> kept;
  if (park.blob.empty()) {
    if (auto it = unconfirmed_.find(park.id); it != unconfirmed_.end()) kept = std::move(it->second.blob);
  }
  ++server_.stats().parking.park_failures_total;
  if (server_.stats().parking.parks_total > 0) --server_.stats().parking.parks_total;
  spdlog::debug("client {}: park refused: {}", park.id, park.describe());
  const std::span<const std::byte> blob = park.blob.empty() ? std::span<const std::byte>(kept) : as_bytes(park.blob);
  (void)restore(std::move(park.fd), blob, park.id);
}

// --- Waking ---

void Parking::woken(parker::WokenConnection woken) {
  if (woken.id == kListenerParkId) {
    listener_woken(std::move(woken.fd), woken.blob);
    return;
  }
  if (restore(std::move(woken.fd), as_bytes(woken.blob), woken.id) != nullptr) {
    ++server_.stats().parking.wakes_total;
  }
}

Connection* Parking::restore(parker::UniqueFd fd, std::span<const std::byte> blob, std::uint64_t id) {
  std::unique_ptr<ParkedSubscriber> stand_in;
  if (auto it = parked_.find(id); it != parked_.end()) {
    stand_in = std::move(it->second);
    parked_.erase(it);
  }
  unconfirmed_.erase(id);
  update_gauge();
  AdoptResult r = server_.adopt_connection(std::move(fd), blob, stand_in.get());
  if (r.connection == nullptr) {
    spdlog::warn("client {}: cannot restore its session ({}); closing it", id, r.error);
    if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in.get(), nullptr);
    return nullptr;  // r.fd closes the socket
  }
  if (stand_in) {
    if (stand_in->over_limit()) {
      r.connection->close();  // as an active subscriber that does not read would be
      return nullptr;
    }
    for (const auto& [channel, message] : stand_in->pending()) r.connection->deliver(channel, message);
  }
  return r.connection;
}

void Parking::closed_by_parker(std::uint64_t id, parker::protocol::CloseReason reason) {
  spdlog::debug("client {}: closed while parked ({})", id, parker::protocol::to_string(reason));
  forget_entry(id);
}

void Parking::forget_entry(std::uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  if (it->second) server_.pubsub().rebind(it->second->channels(), it->second.get(), nullptr);
  parked_.erase(it);
  unconfirmed_.erase(id);
  update_gauge();
}

void Parking::forget_all_entries() {
  for (auto& [id, stand_in] : parked_) {
    if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in.get(), nullptr);
  }
  parked_.clear();
  unconfirmed_.clear();
  update_gauge();
}

// --- The listener across a restart ---

void Parking::on_phase_timer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Parking*>(timer->data);
  if (self->phase_ == Phase::starting) {
    spdlog::info("no answer from parker within {} ms; listening afresh", self->options_.startup_timeout_ms);
    self->decide_listener({});
  } else if (self->phase_ == Phase::handing_over) {
    if (!self->handover_deadline_passed_) {
      spdlog::warn("graceful restart: {} connection(s) still busy after {} ms; parking the listener without them",
                   self->server_.connection_count(), self->options_.handover_timeout_ms);
      self->handover_deadline_passed_ = true;
      uv_timer_start(&self->phase_timer_, on_phase_timer, kHandoverGraceMs, 0);
    } else {
      spdlog::warn("graceful restart: parker did not confirm everything in time; stopping anyway");
      self->finish_handover();
    }
  }
}

void Parking::decide_listener(parker::UniqueFd fd) {
  if (phase_ != Phase::starting) {
    if (fd) spdlog::warn("a listening socket came back from parker too late; closing it");
    return;
  }
  phase_ = Phase::serving;
  uv_timer_stop(&phase_timer_);
  if (on_listener_) on_listener_(std::move(fd));
}

void Parking::listener_woken(parker::UniqueFd fd, std::string_view blob) {
  if (phase_ == Phase::handing_over) {
    // A connection arrived while the listener was parked and parker gave it to us: accept what
    // waits (those clients are parked with the rest), then park the listener again.
    listener_parked_ = false;
    if (std::string e = server_.adopt_listener(std::move(fd)); !e.empty()) spdlog::error("listener: {}", e);
    return;
  }
  if (phase_ != Phase::starting) {
    spdlog::warn("parker handed us a second listening socket; closing it");
    return;
  }
  if (auto clients = decode_listener_blob(blob)) {
    std::size_t subscribers = 0;
    for (const ParkedClientRef& c : *clients) {
      if (c.subscriber) {
        // Recalled now so its subscriptions are registered here again (PUBLISH must count it).
        (void)client_->recall(c.id);
        ++subscribers;
      } else {
        parked_.emplace(c.id, nullptr);
      }
    }
    update_gauge();
    spdlog::info("took over the listening socket; {} connection(s) left parked by the previous process "
                 "({} subscriber(s) recalled)", clients->size(), subscribers);
  } else {
    spdlog::warn("took over the listening socket; its state blob was not understood");
  }
  decide_listener(std::move(fd));
}

// --- Graceful restart ---

bool Parking::begin_handover(std::function<void()> on_done) {
  if (!client_ || !client_->connected() || phase_ != Phase::serving) return false;
  phase_ = Phase::handing_over;
  on_handover_done_ = std::move(on_done);
  listener_ = server_.detach_listener();  // still listening: the kernel queues new clients
  spdlog::info("graceful restart: parking {} connection(s) and the listening socket", server_.connection_count());
  set_scan_interval(kHandoverScanMs);
  uv_timer_start(&phase_timer_, on_phase_timer, options_.handover_timeout_ms, 0);
  return true;
}

void Parking::park_listener() {
  if (!listener_) listener_ = server_.detach_listener();  // adopted again after a wake
  if (!listener_ || listener_parked_ || client_->credit() == 0) return;
  std::vector<ParkedClientRef> refs;
  refs.reserve(parked_.size());
  for (const auto& [id, stand_in] : parked_) {
    if (stand_in) refs.push_back({id, true});
  }
  for (const auto& [id, stand_in] : parked_) {
    if (!stand_in) refs.push_back({id, false});
  }
  const std::size_t max_blob = client_->core().welcome().max_blob;
  std::string blob = encode_listener_blob(refs, max_blob == 0 ? 1u << 20 : max_blob);
  if (parker::Error e = client_->park(listener_, kListenerParkId, blob); e.failed()) {
    spdlog::error("cannot park the listening socket: {}", parker::describe(e));
    return;
  }
  listener_parked_ = true;
  batch_open_ = true;
}

void Parking::maybe_finish_handover() {
  if (phase_ != Phase::handing_over) return;
  const bool all_parked = server_.connection_count() == 0 && listener_parked_ && !listener_;
  const bool confirmed = unconfirmed_.empty() && barriers_confirmed_ == barriers_sent_ && !batch_open_ &&
                         !client_->core().has_queued();
  if (all_parked && confirmed) finish_handover();
}

void Parking::finish_handover() {
  if (phase_ != Phase::handing_over) return;
  phase_ = Phase::done;
  uv_timer_stop(&phase_timer_);
  uv_timer_stop(&scan_timer_);
  spdlog::info("graceful restart: parker holds {} connection(s) and the listening socket", parked_.size());
  if (on_handover_done_) on_handover_done_();
}

}  // namespace heavy
