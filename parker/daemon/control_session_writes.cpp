// ControlSession, protocol 1.1: write-through (WRITE -> WRITE_RESULT) and keep-alive rule
// sets (KEEPALIVE_RULES). docs/PROTOCOL.md, "1.1: talking to parked clients".
#include <spdlog/spdlog.h>

#include "control_session.hpp"
#include "pool.hpp"

namespace parker::daemon {

// Every id is written to, in the order given, before parker reads the next frame; ids not
// parked are named in the answer, so that the owner delivers those itself: exactly once.
void ControlSession::on_message(protocol::Write& m, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("write")) return;
  protocol::WriteResult result;
  result.write = ++writes_handled_;
  write_targets_ += m.ids.size();
  for (std::uint64_t id : m.ids) {
    if (pool_->write(id, m.payload)) {
      ++result.written;
    } else {
      result.not_parked.push_back(id);
    }
  }
  core_.counters.writes_not_parked_total += result.not_parked.size();
  send(result);
}

void ControlSession::on_message(protocol::KeepaliveRules& m, std::vector<UniqueFd>& /*fds*/) {
  if (!require_owner("declare keep-alive rules")) return;
  spdlog::debug("session {}: pool {} keep-alive set {}: {} rules", id_, pool_->name(), m.set, m.rules.size());
  pool_->declare_rules(m.set, std::move(m.rules));
}

std::optional<protocol::RejectReason> ControlSession::check_keepalive_set(const protocol::ParkRecord& record) const {
  std::uint8_t set = protocol::keepalive_set_of(record.flags);
  if (set == 0) return std::nullopt;
  // A 1.0 session has no rules to name (the bits are 1.1's); a 1.1 one must declare first.
  if (minor_ < protocol::kMinorExactlyOnce || !pool_->has_rules(set)) return protocol::RejectReason::no_rules;
  return std::nullopt;
}

}  // namespace parker::daemon
