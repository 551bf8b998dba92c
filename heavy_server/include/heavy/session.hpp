// Session: everything a client's connection means to the server besides its socket and its
// buffers — what must survive parking (and a restart) so the client notices nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace heavy {

struct SessionCounters {
  std::uint64_t created_unix_ms = 0;  // when the client connected (wall clock)
  std::uint64_t commands = 0;         // commands processed for this client
  std::uint64_t parks = 0;            // times parked (updated by the parking code)
  std::uint64_t wakes = 0;            // times woken
  friend bool operator==(const SessionCounters&, const SessionCounters&) = default;
};

struct Session {
  std::uint64_t id = 0;  // CLIENT ID
  std::string name;      // CLIENT SETNAME
  int db = 0;            // SELECT

  // MULTI: commands queued until EXEC, and whether one of them was refused (EXECABORT).
  bool in_multi = false;
  bool multi_failed = false;
  std::vector<std::vector<std::string>> multi_queue;
  std::size_t multi_queue_bytes = 0;

  // SUBSCRIBE: channel names, ordered so a blob's bytes are deterministic.
  std::set<std::string, std::less<>> channels;

  SessionCounters counters;

  [[nodiscard]] bool subscribed() const noexcept { return !channels.empty(); }
  void discard_multi() noexcept {
    in_multi = false;
    multi_failed = false;
    multi_queue.clear();
    multi_queue_bytes = 0;
  }
  friend bool operator==(const Session&, const Session&) = default;
};

}  // namespace heavy
