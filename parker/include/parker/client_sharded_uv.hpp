// parker::UvShardedClient — one pool spread over several parkers ("shards"), driven by libuv.
//
// Why: one parker holds at most RLIMIT_NOFILE connections, and no process can raise that
// beyond the hard limit. A server that parks with several parkers holds only its active
// connections itself, so it can keep far more clients than one process's descriptor limit.
//
// What it is: one parker::UvClient per socket path (the same pool name on each), and a
// router in front of them. Nothing new on the wire: each shard is an ordinary session of
// docs/PROTOCOL.md, and no parker knows about the others.
//   * park() goes to the connected shard with the most free credit (ENOBUFS when every shard
//     is out of it, ENOTCONN when none is connected). An id the router already knows (parked,
//     or listed by an inventory) goes back to the shard that holds it, so a duplicate id is
//     refused by that parker exactly as with one parker.
//   * recall() and drop() go to the shard that holds the id: ENOENT for an id no shard is
//     known to hold, ENOTCONN when its shard is not connected now. With a single shard every
//     id goes to it, known or not: one shard behaves exactly as one UvClient.
//   * write() splits the ids by shard: one WRITE per shard, one result (on_write_result)
//     when every part is answered, results in the order of the writes. What could not be
//     written is said per id (see ShardedWriteResult). A part whose session ends unanswered
//     is not_sent or unknown, as Client says of it (UnansweredWrites).
//   * acknowledge(), request_inventory() and declare_keepalive_rules() are per session, so
//     per shard: the callbacks that start them (on_connected, on_wake) name the shard.
//   * A shard that goes away costs only its share: its unconfirmed parks come back through
//     on_rejected (protocol 1.1) while the other shards keep parking and waking. It
//     reconnects with back-off as a UvClient does; its parker holds the pool's wakes for it.
//     Connections parked on a parker that died with them are lost as with one parker; the
//     router forgets the ids of a shard once that shard's next inventory does not list them.
//   * leave() leaves every shard; on_left runs once, when the last one has ended.
//
// Which shard holds an id is learnt from park() (then confirmed or given back), from
// inventories (request_inventory) and forgotten on wake, close and rejection.
//
// Lifetime: a plain object. close() (or the destructor) stops every shard; parks not sent
// yet come back through on_rejected during close(), and no callback runs after it. The
// UvClients free their memory in libuv close callbacks, so keep running the loop afterwards
// and only then close the loop. Callbacks must not throw and must not destroy this object.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "parker/client_uv.hpp"

namespace parker {

// The outcome of one write() over every shard it touched.
struct ShardedWriteResult {
  std::uint64_t write = 0;    // the number write() gave
  std::uint32_t written = 0;  // connections parker wrote the payload to (summed over shards)
  // Not written, and parker said so (woken, closed or not parked meanwhile): the program
  // delivers the payload itself, as with one parker.
  std::vector<std::uint64_t> not_parked;
  // Not sent: no shard is known to hold the id, or its shard had no session (or refused to
  // queue the WRITE), or the part's session ended and parker is known not to have handled it
  // (UnansweredWrites: its frame never left whole, or a 1.3 parker ended the session after
  // fewer writes). Nothing was written to them: deliver them yourself.
  std::vector<std::uint64_t> not_sent;
  // The part's session ended before parker answered, and parker may have handled it: it
  // died (SIGKILL, a crash), or ended the session without saying how far it got (before 1.3).
  // Written or not, nobody can say now.
  std::vector<std::uint64_t> unknown;
};

// ClientCallbacks with the shard (its index in the paths given to connect()) where the
// event belongs to one session. Every member may be left empty; fds handed to an empty
// callback are closed.
struct ShardedCallbacks {
  std::function<void(std::size_t shard, const protocol::Welcome&)> on_connected;
  std::function<void(std::size_t shard, Error error, std::chrono::milliseconds retry_in)> on_disconnected;
  // Acknowledge with acknowledge(shard, woken.seq) unless ClientOptions::auto_acknowledge.
  std::function<void(std::size_t shard, WokenConnection)> on_wake;
  std::function<void(std::uint64_t id, protocol::CloseReason reason)> on_closed;
  std::function<void(RejectedPark)> on_rejected;
  std::function<void(std::size_t shard, const protocol::ErrorMessage&)> on_error;
  // Credit granted on `shard`; `available` is that shard's total now (credit() sums them).
  std::function<void(std::size_t shard, std::uint32_t available)> on_credit;
  std::function<void(std::uint64_t id)> on_parked;
  std::function<void(std::size_t shard, const protocol::InventoryReply&)> on_inventory;
  std::function<void(const ShardedWriteResult&)> on_write_result;
  // After leave(), once every shard's session is over: ok when all of them confirmed
  // everything, else the first error.
  std::function<void(Error)> on_left;
};

class UvShardedClient {
 public:
  UvShardedClient(uv_loop_t* loop, ShardedCallbacks callbacks);
  ~UvShardedClient();  // close()
  UvShardedClient(const UvShardedClient&) = delete;
  UvShardedClient& operator=(const UvShardedClient&) = delete;

  // One shard per path (1..kMaxShards, no path twice), all for `pool`, each connecting and
  // retrying as UvClient::connect does. EINVAL for no path, too many or one repeated, and
  // whatever UvClient::connect says of a path or the pool name; EISCONN when started.
  static constexpr std::size_t kMaxShards = 64;
  Error connect(std::span<const std::string> paths, std::string_view pool, const ClientOptions& options = {});

  // See Client::park: the fd is taken only on success. The shard is shard_for(id).
  Error park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& options = {});
  Error recall(std::uint64_t id);
  Error drop(std::uint64_t id);
  Error acknowledge(std::size_t shard, std::uint64_t seq);
  Error request_inventory(std::size_t shard);
  Error declare_keepalive_rules(std::size_t shard, std::uint8_t set, std::vector<protocol::KeepaliveRule> rules);
  // See Client::write. Fails (and nothing is sent) only when no part could be queued: then
  // the error of the first part (ENOTCONN, ENOTSUP, EMSGSIZE...), or ENOENT when no shard is
  // known to hold any of the ids. Otherwise ok, and the ids of parts not queued are in the
  // result's not_sent.
  Error write(std::vector<std::uint64_t> ids, std::string payload, std::uint64_t* number = nullptr);
  Error leave();
  void close() noexcept;

  // The shard park(fd, id, ...) would use now: the one holding `id` if known (even when it
  // is not connected), else the connected shard with the most credit (the lowest index
  // among equals); nullopt when there is none with credit.
  [[nodiscard]] std::optional<std::size_t> shard_for(std::uint64_t id) const noexcept;
  // The shard known to hold `id` (parked, in flight, or listed by its inventory).
  [[nodiscard]] std::optional<std::size_t> shard_of(std::uint64_t id) const noexcept;

  [[nodiscard]] std::size_t shard_count() const noexcept { return shards_.size(); }
  [[nodiscard]] const UvClient& shard(std::size_t index) const noexcept { return *shards_[index].client; }
  [[nodiscard]] const std::string& path(std::size_t index) const noexcept { return shards_[index].path; }
  // Ids the router places on `index` now.
  [[nodiscard]] std::size_t held_by(std::size_t index) const noexcept { return shards_[index].held; }
  [[nodiscard]] std::size_t connected_count() const noexcept;
  [[nodiscard]] bool connected() const noexcept { return connected_count() > 0; }
  [[nodiscard]] std::uint32_t credit() const noexcept;               // summed over connected shards
  [[nodiscard]] std::size_t unconfirmed_parks() const noexcept;      // summed
  [[nodiscard]] bool has_queued() const noexcept;                    // any shard
  [[nodiscard]] uv_loop_t* loop() const noexcept { return loop_; }

 private:
  struct WritePart {
    std::uint64_t shard_number = 0;  // the shard's own number for its WRITE
    std::uint64_t write = 0;         // ours
    std::vector<std::uint64_t> ids;
  };
  struct Shard {
    std::string path;
    UvClientPtr client;
    std::size_t held = 0;
    std::deque<WritePart> writes;  // in flight on this shard, in order
    // The ids of this shard an inventory in progress has not listed yet.
    std::optional<std::unordered_set<std::uint64_t>> unlisted;
    bool leaving = false;
  };
  struct PendingWrite {
    std::size_t parts_left = 0;
    ShardedWriteResult result;
  };

  ClientCallbacks callbacks_for(std::size_t index);
  [[nodiscard]] std::optional<std::size_t> route(std::uint64_t id) const noexcept;
  void place(std::uint64_t id, std::size_t index);
  void forget(std::uint64_t id);
  void forget_on(std::uint64_t id, std::size_t index);
  void inventory(std::size_t index, const protocol::InventoryReply& reply);
  void write_answered(std::size_t index, const protocol::WriteResult& result);
  void writes_unanswered(std::size_t index, const UnansweredWrites& w);
  void writes_lost(std::size_t index);
  void deliver_writes();
  void shard_left(std::size_t index, Error error);

  uv_loop_t* loop_;
  ShardedCallbacks callbacks_;
  std::vector<Shard> shards_;
  std::unordered_map<std::uint64_t, std::size_t> where_;  // id → shard
  std::uint64_t writes_started_ = 0;
  std::deque<PendingWrite> pending_writes_;  // front: the oldest not yet reported
  std::uint64_t first_pending_ = 1;          // the number of pending_writes_.front()
  bool leaving_ = false;
  std::size_t shards_leaving_ = 0;
  Error left_error_;
  bool closed_ = false;
};

}  // namespace parker
