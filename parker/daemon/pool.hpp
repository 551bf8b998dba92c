// Pool: the parked connections of one pool name, the live sessions they can be handed back
// to, and the wakes held while no session is connected.
//
// A parked connection belongs to the pool, not to the session that parked it, so a server
// that restarts and says HELLO with the same pool gets its connections back. A pool belongs
// to the uid that first used it.
//
// Lifetime of a parked socket (see parked_socket.hpp): park() creates its record in the
// daemon's ParkedTable, indexes it by id in `parked_` and adds its fd to the SocketWatcher; an event, the deadline, RECALL, DROP or shutdown
// retires it: it leaves the watcher (and the deadline heap), its fd is handed to a WAKE or
// closed, and it is erased. So an id is free for a new PARK as soon as its connection was
// handed back.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core_context.hpp"
#include "keepalive_rules.hpp"
#include "parked_index.hpp"
#include "parked_socket.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

class ControlSession;
class KeeperLink;

class Pool {
 public:
  Pool(CoreContext& core, std::string name, uid_t owner_uid);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // False when the ParkedTable had no pool number left (ParkedTable::kMaxPools pools):
  // such a pool must be destroyed at once, unused.
  [[nodiscard]] bool numbered() const noexcept { return number_ != 0; }
  [[nodiscard]] uid_t owner_uid() const noexcept { return owner_uid_; }
  [[nodiscard]] std::size_t parked() const noexcept { return parked_.size(); }
  [[nodiscard]] std::size_t held() const noexcept { return held_wakes_.size(); }
  [[nodiscard]] std::size_t sessions() const noexcept { return sessions_.size(); }
  [[nodiscard]] std::size_t blob_bytes() const noexcept { return blob_bytes_; }
  // Nothing parked, held or connected: the pool may be forgotten.
  [[nodiscard]] bool idle() const noexcept;

  // Parks `fd` under `record`. On success the pool owns the fd (moved out of `fd`); on
  // refusal the reason is returned and `fd` is left untouched, for REJECTED.
  [[nodiscard]] std::optional<protocol::RejectReason> park(const protocol::ParkRecord& record, UniqueFd& fd);
  // RECALL: hands back each of `ids` that is parked (WAKE `recalled`), in order; the ids that
  // are not parked (or named twice) go to `not_parked`, in order.
  void recall(std::span<const std::uint64_t> ids, std::vector<std::uint64_t>& not_parked);
  // DROP: closes the connection. False when `id` is not parked.
  bool drop(std::uint64_t id);
  // 1.1 WRITE to one id (write_through.hpp): writes what the socket takes; if it cannot take
  // it all, wakes the connection (write_blocked) with the rest as the record's `unsent`.
  // False, with nothing written, when `id` is not parked.
  bool write(std::uint64_t id, std::string_view payload);
  // 1.1 KEEPALIVE_RULES (keepalive_rules.hpp): the pool's rule sets, shared by its sessions.
  void declare_rules(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules);
  [[nodiscard]] bool has_rules(std::uint8_t set) const noexcept { return keepalive_.has(set); }
  [[nodiscard]] const KeepaliveRules& keepalive_rules() const noexcept { return keepalive_; }
  // 1.1: parker ended a session before its owner learnt that this park was accepted; the
  // owner kept its own copy and takes the connection back, so parker's goes (no CLOSED).
  // False when `id` is no longer parked.
  bool let_go_unconfirmed(std::uint64_t id);
  // 1.1 INVENTORY: the ids parked now, and the record of one of them (none if gone since).
  [[nodiscard]] std::vector<std::uint64_t> parked_ids() const;
  [[nodiscard]] std::optional<protocol::InventoryRecord> inventory_record(std::uint64_t id) const;
  // The deadline heap says this socket's deadline passed (it is already out of the heap).
  void deadline_passed(ParkedSocket& socket);
  // Shutdown: every parked connection goes back to a live session (WAKE `shutdown`) or,
  // without one, is closed; held wakes are closed.
  void shutdown();

  void attach(ControlSession& session);  // a session said HELLO: it gets the held records
  void detach(ControlSession& session);
  // Routes a wake / a CLOSED record to the least-loaded live session, or holds it.
  void deliver(WakeItem item);
  void deliver(protocol::CloseRecord record);
  // Hand-over to a successor parker: every parked connection (out of the readiness set and
  // the deadline heap) and every held wake leaves the pool, with its fd, into `out`; held
  // CLOSED records into `closed`. The pool is then empty, but for its sessions.
  void take_for_handover(std::vector<HandoverItem>& out, std::vector<protocol::HandoverClosed>& closed);
  // One record of a hand-over back into the pool (the successor's side, or the old parker's
  // when its successor failed): parked again, or held. Takes `item.fd` only on success.
  [[nodiscard]] bool adopt(HandoverItem& item);
  // Closes held wakes older than the owner grace; returns the next expiry (0: none).
  std::uint64_t expire_held(std::uint64_t now);
  // The readiness set reported `socket` (`error`: with an error condition).
  void socket_event(ParkedSocket& socket, bool error);
  // A new keeper (the last one went away): a copy of every parked and held connection.
  void send_all_to_keeper(KeeperLink& keeper) const;
  // What the keeper must know of this pool's connection `id` (no-op without --keeper).
  void tell_keeper(protocol::KeepOp op, std::uint64_t id, std::string_view unsent = {});
  // The record of a parked connection or a held wake as a HANDOVER carries it (to a
  // successor, to the keeper).
  [[nodiscard]] protocol::HandoverRecord handover_record(const ParkedSocket& socket) const;
  [[nodiscard]] protocol::HandoverRecord handover_record(const HeldWake& held) const;

 private:
  [[nodiscard]] std::uint32_t deadline_left_ms(const ParkedSocket& socket) const;
  // `watched`: still in the kernel's readiness set (false: recall() took it out already).
  void wake(ParkedSocket& socket, protocol::WakeReason reason, std::string_view unsent = {}, bool watched = true);
  // A readable socket with a keep-alive rule set: true when the rules dealt with it (a
  // request answered, or a partial one waiting), false when it must be woken.
  [[nodiscard]] bool keepalive(ParkedSocket& socket);
  void end_partial_wait(ParkedSocket& socket);
  void close_socket(ParkedSocket& socket, protocol::CloseReason reason);
  // `ended`: its parking ends here (time_parked observes it); not for a hand-over, where the
  // connection stays parked in the successor, which carries on the counters (COUNTERS).
  [[nodiscard]] UniqueFd retire(ParkedSocket& socket, bool ended = true, bool watched = true);
  // `minor_1`: only sessions of protocol 1.1 (a wake with unsent bytes cannot go to 1.0).
  [[nodiscard]] ControlSession* least_loaded_session(bool minor_1 = false);
  void close_held_wake(HeldWake& held, protocol::CloseReason reason);

  CoreContext& core_;
  std::string name_;
  uid_t owner_uid_;
  std::uint16_t number_;  // in core_.table: what its records carry instead of a pointer
  ParkedIndex parked_;
  std::vector<ControlSession*> sessions_;
  std::size_t next_session_ = 0;                // round-robin among equally loaded sessions
  std::deque<HeldWake> held_wakes_;             // oldest first
  std::deque<HeldClose> held_closed_;
  std::size_t blob_bytes_ = 0;
  KeepaliveRules keepalive_;
  // Sockets waiting for the rest of a keep-alive request: their own deadline (0: none),
  // while the heap holds the partial-match one. Only those: a parked socket pays nothing.
  std::unordered_map<std::uint64_t, std::uint64_t> partial_deadlines_;
};

}  // namespace parker::daemon
