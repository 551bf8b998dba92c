#include "keepalive_rules.hpp"

namespace parker::daemon {

void KeepaliveRules::declare(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules) {
  if (set == 0 || set > protocol::kMaxKeepaliveSets) return;  // the decoder refuses these
  sets_[set] = std::move(rules);
}

bool KeepaliveRules::has(std::uint8_t set) const noexcept {
  return set != 0 && set <= protocol::kMaxKeepaliveSets && !sets_[set].empty();
}

KeepaliveRules::Result KeepaliveRules::match(std::uint8_t set, std::string_view waiting) const noexcept {
  Result result;
  if (!has(set) || waiting.empty()) return result;
  for (const protocol::KeepaliveRule& rule : sets_[set]) {
    std::string_view request = rule.request;
    if (waiting == request) return {Match::exact, &rule};
    // More than the request waiting (a pipelined command behind a PING) is not a match:
    // the owner must serve both, in order.
    if (waiting.size() < request.size() && request.starts_with(waiting)) result.match = Match::partial;
  }
  return result;
}

}  // namespace parker::daemon
