// The successor's side of a hand-over (`parker --take-over`, docs/PROTOCOL.md "Hand-over to
// a successor"): connect to the running parker at its socket, ask for everything, receive
// the listening socket and every parked and held connection with its record, and say so.
//
// Runs before the successor's loop starts, blocking, with a bounded wait for each frame.
// Until TAKEN is sent the old parker keeps its own copies of everything and serves them
// again if this process fails; after it, they are this process's alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

struct TakenOver {
  UniqueFd listener;
  std::vector<HandoverItem> items;                // parked and held, with their fds
  std::vector<protocol::HandoverClosed> closed;   // CLOSED records held for absent owners
  std::vector<protocol::CounterValue> counters;   // the old parker's (empty from a 1.1 parker)
  std::vector<protocol::HandoverRules> rules;     // its pools' keep-alive rule sets (1.2)
  std::string error;                              // empty on success
};

// `room`: how many fds this process can take (its budget). `frame_timeout`: the longest wait
// for the old parker's next frame.
[[nodiscard]] TakenOver take_over(const std::string& socket_path, std::uint32_t room,
                                  std::chrono::milliseconds frame_timeout = std::chrono::seconds(10));

}  // namespace parker::daemon
