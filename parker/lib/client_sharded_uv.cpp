// parker::UvShardedClient — the router over one UvClient per shard (client_sharded_uv.hpp).
//
// The router's one piece of state is where_: which shard holds which id. It is written when a
// park is queued or an inventory lists an id, and erased when the connection comes back
// (wake, rejection) or parker closes it. Writes are the other thing it keeps: a write() is
// one WRITE per shard, answered separately, reported once every part is, in order.
#include "parker/client_sharded_uv.hpp"

#include <algorithm>
#include <cerrno>
#include <map>
#include <utility>

namespace parker {

UvShardedClient::UvShardedClient(uv_loop_t* loop, ShardedCallbacks callbacks)
    : loop_(loop), callbacks_(std::move(callbacks)) {}

UvShardedClient::~UvShardedClient() { close(); }

Error UvShardedClient::connect(std::span<const std::string> paths, std::string_view pool,
                               const ClientOptions& options) {
  if (closed_) return Error{EBADF};
  if (!shards_.empty()) return Error{EISCONN};
  if (paths.empty() || paths.size() > kMaxShards) return Error{EINVAL};
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (std::find(paths.begin(), paths.begin() + static_cast<std::ptrdiff_t>(i), paths[i]) !=
        paths.begin() + static_cast<std::ptrdiff_t>(i)) {
      return Error{EINVAL};
    }
  }
  // Every shard exists before any connects: a callback of the first may look at the others.
  shards_.reserve(paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) {
    shards_.push_back(Shard{paths[i], UvClient::create(loop_, callbacks_for(i)), 0, {}, {}, false});
  }
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    if (Error e = shards_[i].client->connect(shards_[i].path, pool, options); e.failed()) {
      shards_.clear();  // nothing was sent: the clients close without callbacks
      return e;
    }
  }
  return {};
}

ClientCallbacks UvShardedClient::callbacks_for(std::size_t index) {
  ClientCallbacks cb;
  cb.on_connected = [this, index](const protocol::Welcome& w) {
    if (callbacks_.on_connected) callbacks_.on_connected(index, w);
  };
  cb.on_disconnected = [this, index](Error e, std::chrono::milliseconds retry_in) {
    shards_[index].unlisted.reset();
    writes_lost(index);
    if (callbacks_.on_disconnected) callbacks_.on_disconnected(index, e, retry_in);
  };
  cb.on_wake = [this, index](WokenConnection woken) {
    forget_on(woken.id, index);
    if (callbacks_.on_wake) callbacks_.on_wake(index, std::move(woken));
  };
  cb.on_closed = [this, index](std::uint64_t id, protocol::CloseReason reason) {
    forget_on(id, index);
    if (callbacks_.on_closed) callbacks_.on_closed(id, reason);
  };
  cb.on_rejected = [this, index](RejectedPark park) {
    forget_on(park.id, index);
    if (callbacks_.on_rejected) callbacks_.on_rejected(std::move(park));
  };
  cb.on_error = [this, index](const protocol::ErrorMessage& e) {
    if (callbacks_.on_error) callbacks_.on_error(index, e);
  };
  cb.on_credit = [this, index](std::uint32_t available) {
    if (callbacks_.on_credit) callbacks_.on_credit(index, available);
  };
  cb.on_parked = [this](std::uint64_t id) {
    if (callbacks_.on_parked) callbacks_.on_parked(id);
  };
  cb.on_inventory = [this, index](const protocol::InventoryReply& reply) { inventory(index, reply); };
  cb.on_write_result = [this, index](const protocol::WriteResult& r) { write_answered(index, r); };
  cb.on_writes_unanswered = [this, index](const UnansweredWrites& w) { writes_unanswered(index, w); };
  cb.on_left = [this, index](Error e) { shard_left(index, e); };
  return cb;
}

// --- Where each id is ---

void UvShardedClient::place(std::uint64_t id, std::size_t index) {
  auto [it, inserted] = where_.try_emplace(id, index);
  if (!inserted) {
    if (it->second == index) return;
    --shards_[it->second].held;
    it->second = index;
  }
  ++shards_[index].held;
}

void UvShardedClient::forget(std::uint64_t id) {
  auto it = where_.find(id);
  if (it == where_.end()) return;
  --shards_[it->second].held;
  where_.erase(it);
}

// Only the shard that holds it speaks for it: a wake from another shard (the same id parked
// twice by a confused program) must not unroute the first.
void UvShardedClient::forget_on(std::uint64_t id, std::size_t index) {
  if (auto it = where_.find(id); it != where_.end() && it->second == index) forget(id);
}

std::optional<std::size_t> UvShardedClient::shard_of(std::uint64_t id) const noexcept {
  auto it = where_.find(id);
  if (it == where_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::size_t> UvShardedClient::shard_for(std::uint64_t id) const noexcept {
  if (auto known = shard_of(id)) return known;
  std::optional<std::size_t> best;
  std::uint32_t most = 0;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    const UvClient& c = *shards_[i].client;
    if (c.connected() && c.credit() > most) {
      most = c.credit();
      best = i;
    }
  }
  return best;
}

// --- Calls routed to one shard ---

Error UvShardedClient::park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& options) {
  if (shards_.empty() || closed_) return Error{ENOTCONN};
  std::optional<std::size_t> index = shard_for(id);
  if (!index) return Error{connected() ? ENOBUFS : ENOTCONN};
  if (Error e = shards_[*index].client->park(fd, id, blob, options); e.failed()) return e;
  place(id, *index);
  return {};
}

// With one shard every id is its: the router then behaves exactly as that one UvClient,
// ids it never saw included (a 1.0 parker has no inventory to learn them from).
std::optional<std::size_t> UvShardedClient::route(std::uint64_t id) const noexcept {
  if (shards_.size() == 1) return 0;
  return shard_of(id);
}

Error UvShardedClient::recall(std::uint64_t id) {
  std::optional<std::size_t> index = route(id);
  return index ? shards_[*index].client->recall(id) : Error{ENOENT};
}

Error UvShardedClient::drop(std::uint64_t id) {
  std::optional<std::size_t> index = route(id);
  return index ? shards_[*index].client->drop(id) : Error{ENOENT};
}

Error UvShardedClient::acknowledge(std::size_t shard, std::uint64_t seq) {
  return shard < shards_.size() ? shards_[shard].client->acknowledge(seq) : Error{EINVAL};
}

Error UvShardedClient::request_inventory(std::size_t shard) {
  if (shard >= shards_.size()) return Error{EINVAL};
  if (Error e = shards_[shard].client->request_inventory(); e.failed()) return e;
  // What the inventory does not list is no longer on that parker (see inventory()).
  std::unordered_set<std::uint64_t> unlisted;
  for (const auto& [id, index] : where_) {
    if (index == shard) unlisted.insert(id);
  }
  shards_[shard].unlisted = std::move(unlisted);
  return {};
}

Error UvShardedClient::declare_keepalive_rules(std::size_t shard, std::uint8_t set,
                                               std::vector<protocol::KeepaliveRule> rules) {
  if (shard >= shards_.size()) return Error{EINVAL};
  return shards_[shard].client->declare_keepalive_rules(set, std::move(rules));
}

void UvShardedClient::inventory(std::size_t index, const protocol::InventoryReply& reply) {
  Shard& shard = shards_[index];
  for (const protocol::InventoryRecord& record : reply.records) {
    place(record.id, index);
    if (shard.unlisted) shard.unlisted->erase(record.id);
  }
  if (reply.last && shard.unlisted) {
    for (std::uint64_t id : *shard.unlisted) forget_on(id, index);
    shard.unlisted.reset();
  }
  if (callbacks_.on_inventory) callbacks_.on_inventory(index, reply);
}

// --- Writes: one part per shard ---

Error UvShardedClient::write(std::vector<std::uint64_t> ids, std::string payload, std::uint64_t* number) {
  if (ids.empty()) return Error{EINVAL};
  std::map<std::size_t, std::vector<std::uint64_t>> by_shard;
  ShardedWriteResult result;
  for (std::uint64_t id : ids) {
    if (auto index = route(id)) {
      by_shard[*index].push_back(id);
    } else {
      result.not_sent.push_back(id);
    }
  }
  result.write = writes_started_ + 1;
  std::vector<std::pair<std::size_t, std::uint64_t>> sent;  // shard, its number
  Error first_error{by_shard.empty() ? ENOENT : 0};
  for (auto& [index, part_ids] : by_shard) {
    std::uint64_t shard_number = 0;
    if (Error e = shards_[index].client->write(part_ids, payload, &shard_number); e.failed()) {
      if (first_error.ok()) first_error = e;
      result.not_sent.insert(result.not_sent.end(), part_ids.begin(), part_ids.end());
      continue;
    }
    shards_[index].writes.push_back({shard_number, result.write, std::move(part_ids)});
    sent.emplace_back(index, shard_number);
  }
  if (sent.empty()) return first_error;
  ++writes_started_;
  if (number != nullptr) *number = result.write;
  pending_writes_.push_back({sent.size(), std::move(result)});
  return {};
}

void UvShardedClient::write_answered(std::size_t index, const protocol::WriteResult& r) {
  Shard& shard = shards_[index];
  if (shard.writes.empty() || shard.writes.front().shard_number != r.write) return;  // not ours: ignored
  WritePart part = std::move(shard.writes.front());
  shard.writes.pop_front();
  PendingWrite& pending = pending_writes_[part.write - first_pending_];
  pending.result.written += r.written;
  pending.result.not_parked.insert(pending.result.not_parked.end(), r.not_parked.begin(), r.not_parked.end());
  --pending.parts_left;
  deliver_writes();
}

// The shard's session ended before parker answered these: each part is not sent when parker
// is known not to have handled it, else unknown (see UnansweredWrites).
void UvShardedClient::writes_unanswered(std::size_t index, const UnansweredWrites& w) {
  Shard& shard = shards_[index];
  while (!shard.writes.empty() && shard.writes.front().shard_number <= w.last) {
    WritePart part = std::move(shard.writes.front());
    shard.writes.pop_front();
    PendingWrite& pending = pending_writes_[part.write - first_pending_];
    auto& outcome = part.shard_number <= w.unknown_upto ? pending.result.unknown : pending.result.not_sent;
    outcome.insert(outcome.end(), part.ids.begin(), part.ids.end());
    --pending.parts_left;
  }
  deliver_writes();
}

// The shard's session ended: its parts in flight will never be answered (the client reported
// them through writes_unanswered already; this is for any it did not).
void UvShardedClient::writes_lost(std::size_t index) {
  Shard& shard = shards_[index];
  if (shard.writes.empty()) return;
  for (WritePart& part : shard.writes) {
    PendingWrite& pending = pending_writes_[part.write - first_pending_];
    pending.result.unknown.insert(pending.result.unknown.end(), part.ids.begin(), part.ids.end());
    --pending.parts_left;
  }
  shard.writes.clear();
  deliver_writes();
}

void UvShardedClient::deliver_writes() {
  while (!pending_writes_.empty() && pending_writes_.front().parts_left == 0) {
    ShardedWriteResult result = std::move(pending_writes_.front().result);
    pending_writes_.pop_front();
    ++first_pending_;
    if (callbacks_.on_write_result) callbacks_.on_write_result(result);
    if (closed_) return;
  }
}

// --- Leaving and closing ---

Error UvShardedClient::leave() {
  if (shards_.empty() || closed_) return Error{ENOTCONN};
  if (leaving_) return Error{EALREADY};
  leaving_ = true;
  left_error_ = {};
  // One count held by this call until every shard has been asked: a shard may leave at once
  // (a 1.0 session calls on_left from inside leave()), and on_left must wait for the rest.
  shards_leaving_ = 1;
  std::vector<std::size_t> idle;
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    shards_[i].leaving = true;
    ++shards_leaving_;
    if (shards_[i].client->leave().failed() && shards_[i].leaving) {
      shards_[i].leaving = false;
      --shards_leaving_;
      idle.push_back(i);
    }
  }
  if (idle.size() == shards_.size()) {
    leaving_ = false;
    shards_leaving_ = 0;
    return Error{ENOTCONN};
  }
  // A shard without a session has nothing in flight to confirm: it stops now (its parks not
  // sent come back through on_rejected), and no reconnect brings it back for this owner.
  for (std::size_t i : idle) {
    shards_[i].client->close();
    if (left_error_.ok()) left_error_ = Error{ENOTCONN};
  }
  if (--shards_leaving_ == 0 && callbacks_.on_left) callbacks_.on_left(left_error_);
  return {};
}

void UvShardedClient::shard_left(std::size_t index, Error error) {
  Shard& shard = shards_[index];
  writes_lost(index);
  if (!shard.leaving) return;
  shard.leaving = false;
  if (error.failed() && left_error_.ok()) left_error_ = error;
  if (--shards_leaving_ == 0 && callbacks_.on_left) callbacks_.on_left(left_error_);
}

void UvShardedClient::close() noexcept {
  if (closed_) return;
  closed_ = true;
  // Parks not sent come back through on_rejected, now. The clients are freed (by libuv close
  // callbacks) when shards_ goes, with this object.
  for (Shard& shard : shards_) shard.client->close();
}

// --- Sums ---

std::size_t UvShardedClient::connected_count() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(shards_.begin(), shards_.end(), [](const Shard& s) { return s.client->connected(); }));
}

std::uint32_t UvShardedClient::credit() const noexcept {
  std::uint32_t total = 0;
  for (const Shard& s : shards_) {
    if (s.client->connected()) total += s.client->credit();
  }
  return total;
}

std::size_t UvShardedClient::unconfirmed_parks() const noexcept {
  std::size_t total = 0;
  for (const Shard& s : shards_) total += s.client->unconfirmed_parks();
  return total;
}

bool UvShardedClient::has_queued() const noexcept {
  return std::any_of(shards_.begin(), shards_.end(), [](const Shard& s) { return s.client->core().has_queued(); });
}

}  // namespace parker
