#include "heavy/parking.hpp"

#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "heavy/connection.hpp"
#include "heavy/listener_blob.hpp"
#include "heavy/session_blob.hpp"

namespace heavy {

namespace {

constexpr std::uint64_t kHandoverScanMs = 10;
constexpr std::uint64_t kHandoverGraceMs = 1000;  // after the deadline: waiting for the last confirmations
// After GOODBYE: the client library gives up on parker's answer after its hello_timeout (5 s);
// this only guards against that answer never being reported at all.
constexpr std::uint64_t kLeaveBackstopMs = 7000;

// Bytes the kernel holds for `fd` that we have not read. A connection just handed back by a
// wake has its request waiting there: when the loop iteration that adopted it took longer
// than park_after (a burst of wakes), it would look quiet to the next scan — which runs
// before the poll phase — and be parked again unread, for ever.
bool has_unread_bytes(int fd) {
  int pending = 0;
  return ::ioctl(fd, FIONREAD, &pending) == 0 && pending > 0;
}

// Whether two fds are the same socket (one open file: same inode on sockfs).
bool same_socket(int a, int b) {
  struct stat sa {}, sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

std::string_view as_chars(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// Keep-alive rule sets declared to parker on every 1.1 session: what a parked connection
// answers PING with while parked, as redis would in its state (RESP2).
constexpr std::uint8_t kPlainRules = 1;       // +PONG
constexpr std::uint8_t kSubscribedRules = 2;  // ["pong", ""]
std::vector<parker::protocol::KeepaliveRule> ping_rules(std::string_view reply) {
  std::vector<parker::protocol::KeepaliveRule> rules;
  for (std::string_view request : {"*1\r\n$4\r\nPING\r\n", "*1\r\n$4\r\nping\r\n", "PING\r\n", "ping\r\n"}) {
    rules.push_back({std::string(request), std::string(reply)});
  }
  return rules;
}

std::vector<std::string> to_vector(const std::set<std::string, std::less<>>& names) {
  return {names.begin(), names.end()};
}

// A session that brought work along — replies not sent, or a whole request not yet run (a
// busy client handed over in a graceful restart) — must be served at once: nothing the
// client does would wake it (it is waiting for us).
bool has_work(const Session& session, const RespLimits& limits) {
  if (!session.unsent_output.empty()) return true;
  if (session.unparsed_input.empty()) return false;
  RespParser parser(limits);
  return parser.parse(session.unparsed_input).status != ParseStatus::need_more;
}

}  // namespace

Parking::Parking(Server& server, ParkingOptions options) : server_(server), options_(std::move(options)) {
  uv_timer_init(server_.loop(), &scan_timer_);
  uv_timer_init(server_.loop(), &phase_timer_);
  uv_check_init(server_.loop(), &flush_check_);
  scan_timer_.data = phase_timer_.data = flush_check_.data = this;
  open_handles_ = 3;
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
    if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in->patterns(), stand_in.get(), nullptr);
  }
  for (auto& [id, w] : waiting_) {
    server_.pubsub().rebind(w.stand_in->channels(), w.stand_in->patterns(), w.stand_in.get(), nullptr);
  }
}

void Parking::start(ListenerReady on_listener) {
  on_listener_ = std::move(on_listener);
  parker::ShardedCallbacks cb;
  cb.on_connected = [this](std::size_t shard, const parker::protocol::Welcome& w) { connected(shard, w); };
  cb.on_disconnected = [this](std::size_t shard, parker::Error e, std::chrono::milliseconds retry) {
    disconnected(shard, e, retry);
  };
  cb.on_wake = [this](std::size_t shard, parker::WokenConnection w) { woken(shard, std::move(w)); };
  cb.on_closed = [this](std::uint64_t id, parker::protocol::CloseReason r) { closed_by_parker(id, r); };
  cb.on_rejected = [this](parker::RejectedPark p) { rejected(std::move(p)); };
  cb.on_error = [this](std::size_t /*shard*/, const parker::protocol::ErrorMessage& e) { error_from_parker(e); };
  cb.on_parked = [this](std::uint64_t /*id*/) { maybe_finish_handover(); };
  cb.on_inventory = [this](std::size_t shard, const parker::protocol::InventoryReply& r) { inventory(shard, r); };
  cb.on_left = [this](parker::Error e) { left(e); };
  cb.on_write_result = [this](const parker::ShardedWriteResult& r) { write_result(r); };
  client_ = std::make_unique<parker::UvShardedClient>(server_.loop(), std::move(cb));
  shards_.assign(options_.socket_paths.size(), ShardState{});
  auto& figures = server_.stats().parking.shards;
  figures.clear();
  for (const std::string& path : options_.socket_paths) figures.push_back({path});
  set_scan_interval(std::clamp<std::uint64_t>(options_.park_after_ms / 4, 10, 250));
  wait_at_start();
  // Wakes are acknowledged by woken() itself: once a graceful restart has begun, the ones that
  // still arrive are not adopted, and must stay parker's (for the successor) — see woken().
  parker::ClientOptions client_options;
  client_options.auto_acknowledge = false;
  if (parker::Error e = client_->connect(options_.socket_paths, options_.pool, client_options); e.failed()) {
    spdlog::warn("parker at {}: {}; serving without parking", fmt::join(options_.socket_paths, ", "),
                 parker::describe(e));
    for (ShardState& shard : shards_) shard.warned_unavailable = true;
    decide_listener({});
  }
}

bool Parking::exactly_once(std::size_t shard) const noexcept {
  return client_ && shard < client_->shard_count() && client_->shard(shard).core().exactly_once();
}

// The largest blob the shard takes; 0 (no limit announced): any.
std::size_t Parking::max_blob(std::size_t shard) const noexcept {
  const std::size_t max = client_ && shard < client_->shard_count() ? client_->shard(shard).core().welcome().max_blob : 0;
  return max == 0 ? SIZE_MAX : max;
}

void Parking::set_scan_interval(std::uint64_t ms) noexcept {
  uv_timer_start(&scan_timer_, on_scan, ms, ms);
}

void Parking::close() noexcept {
  if (closed_) return;
  closed_ = true;
  phase_ = Phase::done;
  batch_ids_.clear();  // stopping: what was not sent yet is lost with the process, as any unsent reply
  client_.reset();  // parks not sent yet come back through rejected() now
  listener_.reset();
  handed_over_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&scan_timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&phase_timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), on_handle_closed);
}

void Parking::on_handle_closed(uv_handle_t* handle) noexcept { --static_cast<Parking*>(handle->data)->open_handles_; }

void Parking::update_gauge() noexcept {
  ParkingStats& stats = server_.stats().parking;
  stats.parked_connections = parked_.size();
  if (!client_) return;
  for (std::size_t i = 0; i < stats.shards.size() && i < client_->shard_count(); ++i) {
    stats.shards[i].connected = client_->shard(i).connected();
    stats.shards[i].parked = client_->held_by(i);
    stats.shards[i].credit = client_->shard(i).credit();
  }
}

// --- The session with parker ---

void Parking::connected(std::size_t shard, const parker::protocol::Welcome& welcome) {
  ShardState& state = shards_[shard];
  const std::string& path = options_.socket_paths[shard];
  if (state.warned_unavailable) {
    spdlog::info("parker at {} is reachable again; parking resumes", path);
    state.warned_unavailable = false;
  } else {
    spdlog::info("parking idle connections with parker at {} (pool {}, after {} ms)", path, options_.pool,
                 options_.park_after_ms);
  }
  update_gauge();
  for (auto& [id, stand_in] : parked_) {
    if (stand_in && stand_in->wants_recall() && client_->shard_of(id).value_or(shard) == shard) stand_in->recall_again();
  }
  if (exactly_once(shard)) {
    // Before any park of this session (parks are only queued): they name these sets.
    (void)client_->declare_keepalive_rules(shard, kPlainRules, ping_rules("+PONG\r\n"));
    (void)client_->declare_keepalive_rules(shard, kSubscribedRules, ping_rules("*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
  }
  if (exactly_once(shard) && client_->request_inventory(shard).ok()) {
    // What the pool holds on this shard decides the index (and, at start, with the other
    // shards', the listener): see inventory().
    state.inventory_pending = true;
    state.unlisted.clear();
    for (const auto& [id, stand_in] : parked_) {
      if (client_->shard_of(id) == shard || shards_.size() == 1) state.unlisted.insert(id);
    }
    if (phase_ != Phase::starting) {
      listener_in_inventory_ = listener_held_ = false;
      inventory_records_ = inventory_subscribers_ = 0;
    }
    return;
  }
  // A parker speaking protocol 1.0: no inventory. An empty pool means a new parker.
  if (welcome.parked_in_pool == 0 && !parked_.empty() && shards_.size() == 1) {
    spdlog::warn("parker holds none of our {} parked connection(s) any more; forgetting them", parked_.size());
    forget_all_entries();
  }
  if (phase_ == Phase::starting) {
    if (welcome.parked_in_pool > 0) {
      recall_listener();  // decided by its WAKE or ERROR unknown_id (or the startup timer)
    } else {
      state.answered = true;
      maybe_start_serving();
    }
  }
}

// Writes in flight on the shard have been reported already (not sent, or unknown when parker
// died: see write_result). Its connections stay indexed: a parker that comes back (restarted with its
// keeper, or taken over) still holds them, and its next inventory says which.
void Parking::disconnected(std::size_t shard, parker::Error error, std::chrono::milliseconds retry_in) {
  ShardState& state = shards_[shard];
  if (!state.warned_unavailable) {
    spdlog::warn("parker at {}: {}; {}, retrying in the background (every {} ms at most)", options_.socket_paths[shard],
                 parker::describe(error),
                 client_ && client_->connected() ? "parking with the other parkers" : "serving without parking",
                 retry_in.count());
    state.warned_unavailable = true;
  }
  state.inventory_pending = false;  // asked again on the next session
  state.unlisted.clear();
  update_gauge();
  if (phase_ == Phase::starting) {
    state.answered = true;
    maybe_start_serving();
  }
}

void Parking::error_from_parker(const parker::protocol::ErrorMessage& error) {
  if (error.code == parker::protocol::ErrorCode::unknown_id) {
    if (error.id == kListenerParkId && listener_recalled_ && phase_ == Phase::starting && !handed_over_) {
      // Had parker woken it to us before our RECALL, its WAKE would have come first (one
      // stream, in order): no listener is parked for us.
      spdlog::info("parker holds no listening socket of pool {}; listening afresh", options_.pool);
      decide_listener({});
      return;
    }
    // A recall crossed a wake on the wire: the wake is on its way.
    return;
  }
  spdlog::warn("parker: {} ({})", error.text, parker::protocol::to_string(error.code));
}

// --- The inventory: what the pool holds ---

void Parking::inventory(std::size_t shard, const parker::protocol::InventoryReply& reply) {
  if (!shards_[shard].inventory_pending) return;
  // A big pool comes in many batches: the start waits while they keep coming.
  if (phase_ == Phase::starting) wait_at_start();
  try {
    for (const parker::protocol::InventoryRecord& record : reply.records) index_record(shard, record);
  } catch (const std::bad_alloc&) {
    spdlog::warn("out of memory while indexing parker's inventory; some parked connections are not indexed");
  }
  if (reply.last) inventory_done(shard);
}

void Parking::index_record(std::size_t shard, const parker::protocol::InventoryRecord& record) {
  if (record.id == kListenerParkId) {
    // Held: woken while its owner was leaving (a client arrived); it comes to us as a WAKE.
    listener_in_inventory_ = true;
    listener_held_ = record.state == parker::protocol::InventoryState::held;
    return;
  }
  ++inventory_records_;
  shards_[shard].unlisted.erase(record.id);
  // Held (waiting for an owner): it is on its way to us as a WAKE. Already indexed: ours.
  if (record.state != parker::protocol::InventoryState::parked || parked_.contains(record.id)) return;
  if (server_.find_connection(record.id) != nullptr) {
    // Served here and parked too: a park whose confirmation a crashed parker never sent (its
    // keeper had it), or an id a new process gave away again. The wake tells which: the same
    // socket is dropped there (woken()), another one is served under a new id.
    (void)client_->recall(record.id);
    return;
  }
  // A subscriber is registered under its channels at once, so PUBLISH counts it (and recalls
  // it) without waking anyone now. Its blob is the session, as we (or a predecessor) parked it.
  std::unique_ptr<ParkedSubscriber> stand_in;
  SessionDecodeResult decoded = decode_session(as_bytes(record.blob));
  if (decoded.session && decoded.session->subscribed()) {
    stand_in = std::make_unique<ParkedSubscriber>(record.id, to_vector(decoded.session->channels),
                                                  to_vector(decoded.session->patterns), &recall_, static_cast<WriteThrough*>(this));
    server_.pubsub().rebind(stand_in->channels(), stand_in->patterns(), nullptr, stand_in.get());
    ++inventory_subscribers_;
  } else if (!decoded.session) {
    spdlog::debug("client {}: parked with a blob we do not understand ({}); indexed anyway", record.id, decoded.error);
  }
  parked_.emplace(record.id, std::move(stand_in));
  if (decoded.session && has_work(*decoded.session, server_.options().limits)) (void)client_->recall(record.id);
}

void Parking::inventory_done(std::size_t shard) {
  ShardState& state = shards_[shard];
  state.inventory_pending = false;
  if (!state.unlisted.empty()) {
    // A new parker, or connections woken to another process of the pool meanwhile.
    spdlog::warn("parker at {} holds none of {} of our parked connection(s) any more; forgetting them",
                 options_.socket_paths[shard], state.unlisted.size());
    std::vector<std::uint64_t> gone(state.unlisted.begin(), state.unlisted.end());
    state.unlisted.clear();
    for (std::uint64_t id : gone) forget_entry(id);
  }
  update_gauge();
  if (phase_ == Phase::starting) {
    state.answered = true;
    maybe_start_serving();
  } else if (listener_in_inventory_ && phase_ == Phase::serving) {
    spdlog::warn("parker holds a listening socket of pool {} that nobody took over", options_.pool);
  }
}

// At start, once every shard has answered (its inventory is complete, or it could not be
// reached): the listener a previous process parked is on one of them, or on none.
void Parking::maybe_start_serving() {
  if (phase_ != Phase::starting || start_decided_) return;
  for (const ShardState& shard : shards_) {
    if (!shard.answered) return;
  }
  start_decided_ = true;
  if (inventory_records_ > 0) {
    spdlog::info("parker holds {} connection(s) of pool {} ({} subscriber(s), registered for PUBLISH)",
                 inventory_records_, options_.pool, inventory_subscribers_);
  }
  if (handed_over_) {
    decide_listener(std::move(handed_over_));  // it came (as a held wake) before the inventory
  } else if (listener_in_inventory_ && listener_held_) {
    // On its way as a held wake: decided in listener_woken (or by the startup timer).
  } else if (listener_in_inventory_) {
    recall_listener();
  } else {
    decide_listener({});
    return;
  }
  // Else decided when the listener comes back (listener_woken), or by the startup timer.
  if (phase_ == Phase::starting) wait_at_start();
}

// --- Parking ---

void Parking::on_scan(uv_timer_t* timer) noexcept { static_cast<Parking*>(timer->data)->scan(); }

void Parking::scan() {
  if (!client_ || !client_->connected() || (phase_ != Phase::serving && phase_ != Phase::handing_over)) return;
  const std::uint64_t now = uv_now(server_.loop());
  const bool handover = phase_ == Phase::handing_over;
  const std::uint64_t after = handover ? 0 : options_.park_after_ms;
  out_of_credit_counted_ = false;
  if (now >= after) {
    try {
      server_.for_each_quiet_since(now - after, [this, handover](Connection& c) { park_one(c, handover); });
    } catch (const std::bad_alloc&) {
      spdlog::warn("out of memory while parking; trying again later");
    }
  }
  if (handover) park_listener();
  maybe_finish_handover();
}

// The deadline a park gets from --timeout: what is left of the client's idle time. Subscribers
// are exempt, as in redis.
parker::ParkOptions Parking::park_options(const Connection& conn, std::size_t shard) const {
  parker::ParkOptions o;
  o.socket_known = true;  // accepted by our listener (or handed back by parker): no fstat
  if (exactly_once(shard)) o.keepalive_set = conn.session().subscribed() ? kSubscribedRules : kPlainRules;
  const std::uint64_t timeout_ms = server_.options().client_limits.timeout_seconds * 1000;
  if (timeout_ms == 0 || conn.session().subscribed()) return o;
  const std::uint64_t idle_ms = uv_now(server_.loop()) - conn.last_input_ms();
  o.deadline = std::chrono::milliseconds(idle_ms >= timeout_ms ? 1 : timeout_ms - idle_ms);
  o.wake_on_deadline = false;  // parker closes it, as redis would
  return o;
}

// `handover`: a graceful restart parks every connection between two requests, whatever it has
// buffered (it travels in the blob) and whether or not the kernel holds more of its bytes
// (parker wakes it to the successor). Otherwise only an idle one with nothing waiting.
void Parking::park_one(Connection& conn, bool handover) {
  if (handover ? !conn.can_hand_over() : (!conn.idle() || has_unread_bytes(conn.fd()))) return;
  // The shard it goes to: the one with the most credit (or the one that holds its id already).
  const std::optional<std::size_t> shard = client_->shard_for(conn.id());
  if (!shard || client_->shard(*shard).credit() == 0) {
    if (!out_of_credit_counted_) ++server_.stats().parking.park_failures_total;  // once per scan
    out_of_credit_counted_ = true;
    return;
  }
  const std::uint64_t id = conn.id();
  std::unique_ptr<ParkedSubscriber> stand_in;
  if (conn.session().subscribed()) {
    stand_in = std::make_unique<ParkedSubscriber>(id, to_vector(conn.session().channels),
                                                  to_vector(conn.session().patterns), &recall_, static_cast<WriteThrough*>(this));
  }
  const parker::ParkOptions options = park_options(conn, *shard);
  DetachResult d = server_.detach_connection(id, stand_in.get(), max_blob(*shard), handover);
  if (!d.detached) {
    ++server_.stats().parking.park_failures_total;
    spdlog::debug("client {}: not parked: {}", id, d.error);
    return;
  }
  const std::vector<std::byte>& blob = d.detached->blob;
  if (parker::Error e = client_->park(d.detached->fd, id, as_chars(blob), options); e.failed()) {
    ++server_.stats().parking.park_failures_total;
    spdlog::debug("client {}: not parked: {}", id, parker::describe(e));
    AdoptResult back = server_.adopt_connection(d.detached->fd, blob, stand_in.get());
    if (back.connection == nullptr) {
      spdlog::warn("client {}: cannot serve it again after a failed park ({}); closing it", id, back.error);
      if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in->patterns(), stand_in.get(), nullptr);
    }
    return;
  }
  // The library keeps the fd and the blob until parker confirms the park (on_parked), and
  // gives both back through rejected() if parker refuses it or the session ends first.
  parked_[id] = std::move(stand_in);
  ++server_.stats().parking.parks_total;
  if (options.keepalive_set != 0) ++server_.stats().parking.keepalive_parks_total;
  update_gauge();
}

void Parking::rejected(parker::RejectedPark park) {
  if (park.id == kListenerParkId) {
    spdlog::error("parker did not take the listening socket: {}", park.describe());
    listener_ = std::move(park.fd);
    listener_parked_ = false;
    return;
  }
  ++server_.stats().parking.park_failures_total;
  if (server_.stats().parking.parks_total > 0) --server_.stats().parking.parks_total;
  spdlog::debug("client {}: park refused: {}", park.id, park.describe());
  if (park.blob.empty()) {
    // Only a 1.0 frame cut by a lost connection could come back without its session.
    spdlog::warn("client {}: came back from parker without its session ({}); closing it", park.id, park.describe());
    forget_entry(park.id);
    return;  // park.fd closes the socket
  }
  come_back(std::move(park.fd), std::move(park.blob), park.id, {}, false);
}

// --- Waking ---

void Parking::woken(std::size_t shard, parker::WokenConnection woken) {
  const bool acknowledged = exactly_once(shard);
  if (acknowledged && (phase_ == Phase::handing_over || phase_ == Phase::leaving || phase_ == Phase::done)) {
    woken_in_handover(shard, std::move(woken));
    return;
  }
  const std::uint64_t seq = woken.seq;
  if (Connection* served = server_.find_connection(woken.id);
      served != nullptr && same_socket(served->fd(), woken.fd.get())) {
    // A parker that crashed (parker --keeper) may hand back a connection whose wake we had
    // already adopted before it could learn so: we serve it already. Our extra copy goes.
    spdlog::debug("client {}: woken again though served here (a restarted parker); ignored", woken.id);
    if (acknowledged) (void)client_->acknowledge(shard, seq);
    return;
  }
  if (woken.id == kListenerParkId) {
    listener_woken(shard, std::move(woken.fd), woken.blob);
  } else {
    come_back(std::move(woken.fd), std::move(woken.blob), woken.id, std::move(woken.unsent), true);
  }
  // The connection is ours from here on (or closed for a blob we could not restore; or
  // waiting in waiting_ for write results, its fd ours all the same).
  if (acknowledged && client_) (void)client_->acknowledge(shard, seq);
}

// A graceful restart has begun: a wake is not adopted and not acknowledged, so it stays
// parker's and goes to the successor with the blob it was parked with — nothing is read from
// or written to its socket here. Only a parked subscriber that PUBLISH gave messages to
// meanwhile (the wake is its recall) is parked again at once, the messages added to its blob
// as unsent output (parker lets go of its old copy), so the successor delivers them.
void Parking::woken_in_handover(std::size_t shard, parker::WokenConnection woken) {
  auto it = parked_.find(woken.id);
  ParkedSubscriber* stand_in = it == parked_.end() ? nullptr : it->second.get();
  if (stand_in == nullptr || !stand_in->wants_recall() || phase_ != Phase::handing_over) {
    spdlog::debug("client {}: woken during the graceful restart; left with parker for the successor", woken.id);
    if (woken.id != kListenerParkId) forget_entry(woken.id);
    return;  // our copy of the fd closes; parker's stays
  }
  SessionDecodeResult decoded = decode_session(as_bytes(woken.blob));
  std::optional<std::vector<std::byte>> blob;
  if (decoded.session && !stand_in->over_limit()) {
    decoded.session->unsent_output.append(woken.unsent);  // what parker could not write goes first
    decoded.session->unsent_output.append(stand_in->pending());
    decoded.session->unsent_output.append(stand_in->behind_writes());
    blob = encode_session(*decoded.session, max_blob(shard));
  }
  if (!blob) {
    spdlog::warn("client {}: {} byte(s) of messages do not fit its blob; the successor will not deliver them",
                 woken.id, stand_in->pending().size());
    forget_entry(woken.id);
    return;
  }
  auto fresh = std::make_unique<ParkedSubscriber>(woken.id, stand_in->channels(), stand_in->patterns(), &recall_, static_cast<WriteThrough*>(this));
  server_.pubsub().rebind(stand_in->channels(), stand_in->patterns(), stand_in, fresh.get());
  if (parker::Error e = client_->park(woken.fd, woken.id, as_chars(*blob)); e.failed()) {
    spdlog::warn("client {}: cannot park it again with its messages ({}); the successor will not deliver them",
                 woken.id, parker::describe(e));
    it->second = std::move(fresh);
    forget_entry(woken.id);
    return;
  }
  it->second = std::move(fresh);
}

void Parking::come_back(parker::UniqueFd fd, std::string blob, std::uint64_t id, std::string unsent, bool count_wake) {
  std::unique_ptr<ParkedSubscriber> stand_in;
  if (auto it = parked_.find(id); it != parked_.end()) {
    stand_in = std::move(it->second);
    parked_.erase(it);
  }
  for (ShardState& shard : shards_) shard.unlisted.erase(id);
  update_gauge();
  if (stand_in && stand_in->writes_in_flight() > 0) {
    // Parker may yet report some of those writes not made: they must reach the client before
    // anything newer, so the connection is served once every one is answered (one round trip).
    stand_in->set_woken();
    waiting_[id] = Waiting{std::move(fd), std::move(blob), std::move(unsent), std::move(stand_in), count_wake};
    return;
  }
  if (restore(std::move(fd), as_bytes(blob), id, unsent, std::move(stand_in)) != nullptr && count_wake) {
    ++server_.stats().parking.wakes_total;
  }
}

void Parking::finish_waiting(std::uint64_t id) {
  auto it = waiting_.find(id);
  if (it == waiting_.end() || it->second.stand_in->writes_in_flight() > 0) return;
  Waiting w = std::move(it->second);
  waiting_.erase(it);
  if (restore(std::move(w.fd), as_bytes(w.blob), id, w.unsent, std::move(w.stand_in)) != nullptr && w.count_wake) {
    ++server_.stats().parking.wakes_total;
  }
}

Connection* Parking::restore(parker::UniqueFd fd, std::span<const std::byte> blob, std::uint64_t id,
                             std::string_view unsent, std::unique_ptr<ParkedSubscriber> stand_in) {
  AdoptResult r = server_.adopt_connection(fd, blob, stand_in.get());
  if (r.connection == nullptr) {
    spdlog::warn("client {}: cannot restore its session ({}); closing it", id, r.error);
    if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in->patterns(), stand_in.get(), nullptr);
    return nullptr;  // `fd` closes the socket
  }
  if (stand_in) {
    if (stand_in->over_limit()) {
      r.connection->close();  // as an active subscriber that does not read would be
      return nullptr;
    }
  }
  // Bytes parker accepted and could not write come first; then what was kept here.
  if (!unsent.empty()) r.connection->deliver_raw(unsent);
  if (stand_in) r.connection->deliver_raw(stand_in->pending());
  return r.connection;
}

// --- Write-through ---

ParkedSubscriber* Parking::stand_in_of(std::uint64_t id) {
  if (auto it = parked_.find(id); it != parked_.end()) return it->second.get();
  if (auto it = waiting_.find(id); it != waiting_.end()) return it->second.stand_in.get();
  return nullptr;
}

bool Parking::write_through(std::uint64_t id, std::string_view pattern, std::string_view channel,
                            std::string_view message) {
  // Through the shard that holds it, when that one has a 1.1 session now.
  const std::optional<std::size_t> shard = client_ ? client_->shard_of(id) : std::nullopt;
  if (!shard || !client_->shard(*shard).connected() || !exactly_once(*shard)) return false;
  if (phase_ != Phase::serving && phase_ != Phase::starting) return false;
  if (batch_ids_.empty() || batch_pattern_ != pattern || batch_channel_ != channel || batch_message_ != message) {
    flush_writes();
    ReplyBuffer resp;
    resp.array(pattern.empty() ? 3 : 4);
    resp.bulk(pattern.empty() ? "message" : "pmessage");
    if (!pattern.empty()) resp.bulk(pattern);
    resp.bulk(channel);
    resp.bulk(message);
    if (resp.pending().size() > parker::protocol::kMaxWritePayload) return false;
    batch_pattern_ = pattern;
    batch_channel_ = channel;
    batch_message_ = message;
    batch_payload_ = resp.pending();
  }
  batch_ids_.push_back(id);
  if (!flush_armed_) {
    flush_armed_ = true;
    uv_check_start(&flush_check_, on_flush_check);  // after this iteration's I/O callbacks
  }
  return true;
}

void Parking::on_flush_check(uv_check_t* check) noexcept {
  auto* self = static_cast<Parking*>(check->data);
  self->flush_writes();
  uv_check_stop(check);
  self->flush_armed_ = false;
}

// One WRITE per message: the client library sends it at its next flush, after the parks
// queued before it. A write that cannot be queued is kept by each stand-in, with a recall.
void Parking::flush_writes() {
  if (batch_ids_.empty()) return;
  std::vector<std::uint64_t> ids = std::move(batch_ids_);
  batch_ids_.clear();
  std::uint64_t number = 0;
  parker::Error e = client_ ? client_->write(ids, batch_payload_, &number) : parker::Error{ENOTCONN};
  if (e.failed()) {
    spdlog::debug("write-through of {} message(s) not sent ({}); recalling them", ids.size(), parker::describe(e));
    for (std::uint64_t id : ids) {
      if (ParkedSubscriber* s = stand_in_of(id)) s->keep_returned(batch_payload_, true);
      write_settled(id);
    }
    return;
  }
  writes_in_flight_.push_back({number, batch_payload_, std::move(ids)});
}

void Parking::write_result(const parker::ShardedWriteResult& result) {
  if (writes_in_flight_.empty() || writes_in_flight_.front().number != result.write) {
    spdlog::warn("parker answered write {} that is not the next in flight; ignored", result.write);
    return;
  }
  WriteInFlight w = std::move(writes_in_flight_.front());
  writes_in_flight_.pop_front();
  auto& stats = server_.stats().parking;
  stats.write_through_messages_total += result.written;
  stats.write_through_bytes_total += static_cast<std::uint64_t>(result.written) * w.payload.size();
  stats.write_through_returned_total += result.not_parked.size();
  // Not written: woken or closed before parker got the WRITE. Delivered by us, in order.
  for (std::uint64_t id : result.not_parked) {
    if (ParkedSubscriber* s = stand_in_of(id)) s->keep_returned(w.payload, false);
  }
  // Parker never handled it: its shard had no session to take the WRITE, or the session
  // ended before parker got to it (a hand-over, parker stopping: protocol 1.3 says how far it
  // got). Kept here, and recalled (now, or when that shard is back) so it is delivered, ahead
  // of anything newer (what is kept stops write-through to the connection).
  for (std::uint64_t id : result.not_sent) {
    if (ParkedSubscriber* s = stand_in_of(id)) s->keep_returned(w.payload, true);
  }
  // The shard's parker died with it (or one before protocol 1.3 ended the session without
  // saying how far it got): made or not, nobody can say. Counted as made — at most once: a
  // message is never sent twice, but may be lost here.
  if (!result.unknown.empty()) {
    spdlog::warn("write-through of a message to {} parked client(s) unanswered when a session with parker ended "
                 "(parker gone): it may not have been delivered",
                 result.unknown.size());
  }
  for (std::uint64_t id : w.ids) write_settled(id);
}

// A WRITE naming `id` was answered, or will never be sent. A connection woken meanwhile
// waits for its last one (come_back): that one may be a batch still unsent when the wake
// came — PUBLISH wrote through, then the WAKE and the end of the session arrived in the
// same loop iteration — which fails here in flush_writes, not in write_result.
void Parking::write_settled(std::uint64_t id) {
  ParkedSubscriber* s = stand_in_of(id);
  if (s == nullptr) return;
  s->write_answered();
  if (s->writes_in_flight() == 0 && waiting_.contains(id)) finish_waiting(id);
}

void Parking::closed_by_parker(std::uint64_t id, parker::protocol::CloseReason reason) {
  spdlog::debug("client {}: closed while parked ({})", id, parker::protocol::to_string(reason));
  forget_entry(id);
}

void Parking::forget_entry(std::uint64_t id) {
  for (ShardState& shard : shards_) shard.unlisted.erase(id);
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  if (it->second) server_.pubsub().rebind(it->second->channels(), it->second->patterns(), it->second.get(), nullptr);
  parked_.erase(it);
  update_gauge();
}

void Parking::forget_all_entries() {
  for (auto& [id, stand_in] : parked_) {
    if (stand_in) server_.pubsub().rebind(stand_in->channels(), stand_in->patterns(), stand_in.get(), nullptr);
  }
  parked_.clear();
  for (ShardState& shard : shards_) shard.unlisted.clear();
  update_gauge();
}

// --- The listener across a restart ---

// (Re)arms the startup timer from this moment: uv_now() is the time this loop iteration
// began, and indexing a big inventory batch (or a loaded machine) can make that long ago —
// the listener's wake would be given up on before parker could send it.
void Parking::wait_at_start() {
  uv_update_time(server_.loop());
  uv_timer_start(&phase_timer_, on_phase_timer, options_.startup_timeout_ms, 0);
}

void Parking::recall_listener() {
  if (client_->recall(kListenerParkId).failed()) {
    decide_listener({});
    return;
  }
  listener_recalled_ = true;
}

void Parking::on_phase_timer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Parking*>(timer->data);
  switch (self->phase_) {
    case Phase::starting:
      if (self->handed_over_) {
        spdlog::warn("parker's inventory did not come within {} ms; serving without it",
                     self->options_.startup_timeout_ms);
      } else if (self->listener_recalled_ || self->listener_held_) {
        spdlog::warn("parker did not hand back the listening socket it holds within {} ms (--startup-timeout); "
                     "listening afresh",
                     self->options_.startup_timeout_ms);
      } else {
        spdlog::info("no answer from parker within {} ms (--startup-timeout); listening afresh",
                     self->options_.startup_timeout_ms);
      }
      self->decide_listener(std::move(self->handed_over_));
      break;
    case Phase::handing_over:
      if (!self->handover_deadline_passed_) {
        spdlog::warn("graceful restart: {} connection(s) could not be handed over within {} ms (closing, or "
                     "too much buffered for a blob); leaving them to the shutdown",
                     self->server_.connection_count(), self->options_.handover_timeout_ms);
        self->handover_deadline_passed_ = true;
        uv_timer_start(&self->phase_timer_, on_phase_timer, kHandoverGraceMs, 0);
      } else {
        spdlog::warn("graceful restart: {} park(s) still unconfirmed; leaving parker anyway",
                     self->client_ ? self->client_->unconfirmed_parks() : 0);
        self->leave_session();
      }
      break;
    case Phase::leaving:
      spdlog::warn("graceful restart: parker's session did not end; stopping anyway");
      self->finish_handover();
      break;
    case Phase::serving:
    case Phase::done:
      break;
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

void Parking::listener_woken(std::size_t shard, parker::UniqueFd fd, std::string_view blob) {
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
  if (exactly_once(shard)) {
    // The inventories index the connections left parked (see index_record): serving starts
    // once every shard's is complete, so that PUBLISH counts every parked subscriber from the first.
    spdlog::info("took over the listening socket left with parker by the previous process");
    if (!start_decided_) {
      handed_over_ = std::move(fd);
      return;
    }
  } else if (auto clients = decode_listener_blob(blob)) {
    // A 1.0 parker has no inventory: the previous process listed its parked clients here.
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
  scan();  // every connection between two requests goes now, the listener with them
  return true;
}

void Parking::park_listener() {
  if (!listener_) listener_ = server_.detach_listener();  // adopted again after a wake
  if (!listener_ || listener_parked_ || client_->credit() == 0) return;
  // The blob lists the connections left parked, for a successor on a 1.0 parker (which has
  // no inventory); on 1.1 the successor asks parker instead.
  std::vector<ParkedClientRef> refs;
  refs.reserve(parked_.size());
  for (const auto& [id, stand_in] : parked_) {
    if (stand_in) refs.push_back({id, true});
  }
  for (const auto& [id, stand_in] : parked_) {
    if (!stand_in) refs.push_back({id, false});
  }
  const std::size_t shard_max = max_blob(client_->shard_for(kListenerParkId).value_or(0));
  std::string blob = encode_listener_blob(refs, shard_max == SIZE_MAX ? 1u << 20 : shard_max);
  parker::ParkOptions listener_options;
  listener_options.socket_known = true;
  if (parker::Error e = client_->park(listener_, kListenerParkId, blob, listener_options); e.failed()) {
    spdlog::error("cannot park the listening socket: {}", parker::describe(e));
    return;
  }
  listener_parked_ = true;
}

void Parking::maybe_finish_handover() {
  if (phase_ != Phase::handing_over || !client_) return;
  const bool all_parked = server_.connection_count() == 0 && listener_parked_ && !listener_;
  // unconfirmed_parks() counts the parks queued too; recalls queued must go out first as well.
  const bool confirmed = client_->unconfirmed_parks() == 0 && !client_->has_queued();
  if (all_parked && confirmed) leave_session();
}

// Everything is parker's: leave the session, so that wakes sent from now on are not adopted
// by this process (they stay parker's, for the next one); the handover ends in left().
void Parking::leave_session() {
  if (phase_ != Phase::handing_over) return;
  phase_ = Phase::leaving;
  uv_timer_stop(&scan_timer_);
  uv_timer_start(&phase_timer_, on_phase_timer, kLeaveBackstopMs, 0);
  if (parker::Error e = client_ ? client_->leave() : parker::Error{ENOTCONN}; e.failed()) {
    spdlog::warn("graceful restart: cannot leave parker's session ({}); stopping", parker::describe(e));
    finish_handover();
  }
}

void Parking::left(parker::Error error) {
  if (phase_ != Phase::leaving) return;
  if (error.failed()) {
    spdlog::warn("graceful restart: parker's session ended before it confirmed everything: {}",
                 parker::describe(error));
  }
  finish_handover();
}

void Parking::finish_handover() {
  if (phase_ != Phase::handing_over && phase_ != Phase::leaving) return;
  phase_ = Phase::done;
  uv_timer_stop(&phase_timer_);
  uv_timer_stop(&scan_timer_);
  spdlog::info("graceful restart: parker holds {} connection(s) and the listening socket", parked_.size());
  if (on_handover_done_) on_handover_done_();
}

}  // namespace heavy
