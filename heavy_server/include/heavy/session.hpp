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

  // SUBSCRIBE channels and PSUBSCRIBE patterns, ordered so a blob's bytes are deterministic.
  std::set<std::string, std::less<>> channels;
  std::set<std::string, std::less<>> patterns;

  SessionCounters counters;

  // Only while the connection is away from a process (parked, or handed to a successor in a
  // graceful restart): the bytes it had read and not parsed (a partial request, or requests a
  // busy client pipelined) and the replies not sent yet. The process that adopts it sends the
  // output first and parses the input before anything the client sends next.
  std::string unparsed_input;
  std::string unsent_output;

  [[nodiscard]] bool subscribed() const noexcept { return !channels.empty() || !patterns.empty(); }
  // What SUBSCRIBE / PSUBSCRIBE replies count: channels and patterns together, as redis does.
  [[nodiscard]] std::size_t subscription_count() const noexcept { return channels.size() + patterns.size(); }
  void discard_multi() noexcept {
    in_multi = false;
    multi_failed = false;
    multi_queue.clear();
    multi_queue_bytes = 0;
  }
  friend bool operator==(const Session&, const Session&) = default;
};

}  // namespace heavy
