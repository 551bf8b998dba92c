// A connection on its way back to an owner: the WAKE record and the fd that goes with it.
#pragma once

#include <cstdint>

#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"

namespace parker::daemon {

struct WakeItem {
  protocol::WakeRecord record;
  UniqueFd fd;
  std::uint64_t woken_ns = 0;  // uv_hrtime() at the wake decision (wake delivery histogram)
};

// Held for a pool with no live session, since `since` (uv_now milliseconds).
struct HeldWake {
  WakeItem item;
  std::uint64_t since = 0;
};
struct HeldClose {
  protocol::CloseRecord record;
  std::uint64_t since = 0;
};

// A connection on its way to a successor parker (handover.hpp): its HANDOVER record and fd.
struct HandoverItem {
  protocol::HandoverRecord record;
  UniqueFd fd;
};

}  // namespace parker::daemon
