// KeepaliveRules: a pool's keep-alive rule sets (docs/PROTOCOL.md, "1.1: keep-alive rules").
//
// An owner declares up to 15 sets of at most 8 request -> reply pairs once per session
// (KEEPALIVE_RULES); a park names one set in the high nibble of its flags. So a parked
// connection carries 4 bits, not its rules: memory per parked connection does not grow.
//
// When a parked socket with a set turns readable, parker peeks (MSG_PEEK) at up to
// kMaxKeepaliveRequest + 1 bytes and asks match(): exactly one rule's request -> parker
// consumes exactly those bytes and writes the reply; a proper prefix of some request ->
// wait a bounded time for the rest; anything else -> wake as without rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "parker/protocol.hpp"

namespace parker::daemon {

// How long a proper prefix of a request may wait for the rest before the connection wakes.
inline constexpr std::uint64_t kKeepalivePartialWaitMs = 200;

class KeepaliveRules {
 public:
  enum class Match { none, exact, partial };
  struct Result {
    Match match = Match::none;
    const protocol::KeepaliveRule* rule = nullptr;  // exact: the rule to apply
  };

  // Replaces set `set` (1..15); no rules removes it.
  void declare(std::uint8_t set, std::vector<protocol::KeepaliveRule> rules);
  [[nodiscard]] bool has(std::uint8_t set) const noexcept;
  // What `waiting` (the bytes peeked) means under set `set` (none for an unknown set).
  [[nodiscard]] Result match(std::uint8_t set, std::string_view waiting) const noexcept;
  // The rules of set `set` (empty for none), e.g. to hand them to a successor parker.
  [[nodiscard]] const std::vector<protocol::KeepaliveRule>& rules(std::uint8_t set) const noexcept {
    return sets_[set <= protocol::kMaxKeepaliveSets ? set : 0];
  }

 private:
  std::array<std::vector<protocol::KeepaliveRule>, protocol::kMaxKeepaliveSets + 1> sets_{};
};

}  // namespace parker::daemon
