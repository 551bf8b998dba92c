// Daemon: the old parker's side of a hand-over to a successor (`parker --take-over`,
// docs/PROTOCOL.md "Hand-over to a successor"), and the successor's adoption of what it got.
//
// Exactly once, whatever dies: the old parker keeps its own copy of every fd it hands over
// until the successor says TAKEN for all of them. Until then the successor serves nothing
// (it has not started its loop), so if it goes away half-way the old parker simply parks
// and holds everything again and resumes accepting; once TAKEN arrives the copies close and
// the old parker exits. Owner sessions are ended by parker when the hand-over starts, so
// (protocol 1.1) every wake they were sent whole is theirs, and parks not yet confirmed come
// back to them; they reconnect to the same socket, which the successor then serves.
#include <spdlog/spdlog.h>

#include "control_session.hpp"
#include "daemon.hpp"
#include "keeper_link.hpp"
#include "pool.hpp"

namespace parker::daemon {
namespace {
// HANDOVER frames carry up to 253 records, and about this many bytes of records.
constexpr std::size_t kMaxHandoverFrameBytes = 256u << 10;
}  // namespace

void Daemon::hand_over(ControlSession& successor, std::uint32_t room) {
  if (handover_ || totals_.stopping) {
    successor.fail(protocol::ErrorCode::shutting_down, "this parker is already stopping or handing over");
    return;
  }
  // What owner sessions have pending comes back to the pools when they are ended below:
  // their load bounds it.
  std::size_t total = 1 + totals_.parked + totals_.held;
  for (ControlSession* s : sessions_) total += s->load();
  if (room < total) {
    successor.fail(protocol::ErrorCode::not_allowed,
                   fmt::format("the successor has room for {} fds; {} are to be handed over", room, total));
    return;
  }
  spdlog::info("handing over to a successor (session {}, pid {}): the listener, {} parked, {} held", successor.id(),
               successor.peer().pid, totals_.parked, totals_.held);
  listener_.pause();  // peers that connect now wait in the backlog for the successor
  handover_.emplace();
  handover_->to = &successor;
  for (ControlSession* s : std::vector<ControlSession*>(sessions_.begin(), sessions_.end())) {
    if (s != &successor) s->fail(protocol::ErrorCode::shutting_down, "parker is handing over to its successor; reconnect");
  }
  // 1.2: the keep-alive rule sets of pools with parked connections go first, so the
  // successor answers their requests before the owner is back to declare them again.
  std::vector<protocol::HandoverRules> rules;
  if (successor.minor() >= protocol::kMinorHandoverState) {
    for (auto& [name, pool] : pools_) {
      if (pool->parked() == 0) continue;
      for (std::uint8_t set = 1; set <= protocol::kMaxKeepaliveSets; ++set) {
        const auto& set_rules = pool->keepalive_rules().rules(set);
        if (set_rules.empty()) continue;
        rules.push_back({pool->name(), static_cast<std::uint32_t>(pool->owner_uid()), {set, set_rules}});
      }
    }
  }
  for (auto& [name, pool] : pools_) pool->take_for_handover(handover_->items, handover_->closed);
  if (successor.minor() < protocol::kMinorHandoverState) {
    // A 1.1 successor has no field for a held wake's unsent bytes: say so rather than lose
    // them quietly. (Our own copy of the item keeps them, should the successor fail.)
    for (const HandoverItem& item : handover_->items) {
      if (!item.record.unsent.empty()) {
        spdlog::warn("pool {}: held wake of id {} hands over to a 1.1 successor without its {} unsent bytes",
                     item.record.pool, item.record.id, item.record.unsent.size());
      }
    }
  }

  using protocol::HandoverKind;
  successor.send_lent(protocol::Handover{{{HandoverKind::listener, "", 0, 0, 0, 0, "", ""}}}, {listener_.fd()});
  for (auto& r : rules) successor.send_lent(std::move(r), {});
  const std::vector<HandoverItem>& items = handover_->items;
  for (std::size_t at = 0; at < items.size();) {
    protocol::Handover frame;
    std::vector<int> fds;
    std::size_t bytes = 0;
    while (at < items.size() && frame.records.size() < protocol::kMaxRecordsPerFrame &&
           (frame.records.empty() || bytes + protocol::encoded_size(items[at].record) <= kMaxHandoverFrameBytes)) {
      bytes += protocol::encoded_size(items[at].record);
      frame.records.push_back(items[at].record);
      if (successor.minor() < protocol::kMinorHandoverState) frame.records.back().unsent.clear();
      fds.push_back(items[at].fd.get());
      ++at;
    }
    successor.send_lent(frame, std::move(fds));
  }
  // 1.2: the counters go too, so parker's metrics continue across the hand-over. Nothing is
  // served from here on, so they are final but for the hand-over's own session.
  if (successor.minor() >= protocol::kMinorHandoverState) {
    successor.send_lent(protocol::HandoverCounters{export_counters(counters_)}, {});
  }
  successor.send_lent(protocol::HandoverEnd{items.size() + 1, handover_->closed}, {});
  // What ending the owner sessions told the keeper reaches it before the successor does.
  if (keeper_) keeper_->drain();
}

void Daemon::handover_taken(ControlSession& successor, std::uint64_t records) {
  if (!handover_ || handover_->to != &successor) {
    successor.fail(protocol::ErrorCode::bad_frame, "TAKEN without a hand-over to this session");
    return;
  }
  if (records != handover_->items.size() + 1) {
    // Its session closes, and with it the hand-over: everything is served here again.
    successor.fail(protocol::ErrorCode::bad_frame,
                   fmt::format("TAKEN {} of {} records", records, handover_->items.size() + 1));
    return;
  }
  const std::size_t n = handover_->items.size();
  handover_.reset();  // our copies close: the successor has its own
  handed_over_ = true;
  capacity_.fds_released(n);
  listener_.give_up_path();  // the successor listens on the same socket file
  spdlog::info("handed over the listener and {} connections to the successor (pid {}); exiting", n,
               successor.peer().pid);
  if (on_stopping_) on_stopping_();
  stop_now();
}

std::pair<std::size_t, std::size_t> Daemon::adopt_items(std::vector<HandoverItem>& items,
                                                        const std::vector<protocol::HandoverClosed>& closed) {
  std::size_t parked = 0, held = 0, refused = 0;
  for (HandoverItem& item : items) {
    Pool* pool = pool_for(item.record.pool, item.record.uid);
    const bool is_parked = item.record.kind == protocol::HandoverKind::parked;
    if (pool == nullptr || !pool->adopt(item)) {
      item.fd.reset();
      ++refused;
      // Its owner must hear of it, or it would count the connection parked for ever. (Here a
      // park is checked again: a non-socket an owner claimed a socket, 1.4, is refused.)
      if (pool != nullptr) pool->deliver(protocol::CloseRecord{item.record.id, protocol::CloseReason::error});
      continue;
    }
    ++(is_parked ? parked : held);
  }
  for (const auto& c : closed) {
    if (Pool* pool = pool_for(c.pool, c.uid)) pool->deliver(protocol::CloseRecord{c.id, c.reason});
  }
  if (refused != 0) {
    capacity_.fds_released(refused);
    spdlog::error("{} handed-over connections could not be parked or held here (limits, pool of another uid, "
                  "not a socket): closed, and CLOSED error sent to their pools here",
                  refused);
  }
  return {parked, held};
}

// The successor's session ended before TAKEN: serve everything again, as before.
void Daemon::handover_failed() {
  HandingOver failed = std::move(*handover_);
  handover_.reset();
  auto [parked, held] = adopt_items(failed.items, failed.closed);
  spdlog::warn("the successor went away before taking everything over: serving the listener, {} parked and {} held "
               "again", parked, held);
  listener_.resume();
  credit_dirty_ = true;
}

void Daemon::adopt_rules(const std::vector<protocol::HandoverRules>& sets) {
  std::size_t declared = 0;
  for (const auto& r : sets) {
    Pool* pool = pool_for(r.pool, r.uid);
    if (pool == nullptr) {
      spdlog::warn("keep-alive set {} of pool {} (uid {}) not taken over: the pool belongs to another uid here",
                   r.rules.set, r.pool, r.uid);
      continue;
    }
    pool->declare_rules(r.rules.set, r.rules.rules);
    ++declared;
  }
  if (declared != 0) spdlog::info("took over {} keep-alive rule set(s)", declared);
}

void Daemon::adopt_counters(const std::vector<protocol::CounterValue>& values) {
  if (values.empty()) return;  // a 1.1 predecessor: the counters start at zero
  ImportedCounters imported = import_counters(counters_, values);
  spdlog::info("continuing the predecessor's counters ({} series)", imported.added);
  if (imported.unknown != 0) {
    spdlog::warn("{} of the predecessor's counter series are not known to this parker (another version); "
                 "dropped", imported.unknown);
  }
}

void Daemon::adopt_handover(std::vector<HandoverItem> items, std::vector<protocol::HandoverClosed> closed) {
  capacity_.fds_arrived(0, items.size());
  auto [parked, held] = adopt_items(items, closed);
  spdlog::info("took over {} parked and {} held connections and {} CLOSED records", parked, held, closed.size());
}

}  // namespace parker::daemon
