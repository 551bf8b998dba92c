// Something that parks connections: the minimal parker written straight on the syscalls
// (the floor), or parker itself with a small server using its client library (the hook).
// wake_latency and idle_cost measure every backend the same way through this interface.
//
// The contract a backend implements:
//   - a server process listens on two loopback ports;
//   - a connection accepted on park_port() is parked at once (handed to the watcher);
//   - when a parked connection becomes readable it is woken (handed back to the server),
//     which reads the request, writes one reply byte per request byte, and parks it again;
//   - a connection accepted on live_port() stays in the server's own event loop and is
//     served the same way, never parked;
//   - parked_count() counts connections held by the watcher (not in flight), so a probe
//     can wait until its connection really is parked before it measures a wake.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "config.hpp"
#include "processes.hpp"

namespace parker::bench {

class ParkingBackend {
 public:
  virtual ~ParkingBackend() = default;

  [[nodiscard]] virtual std::string name() const = 0;
  // Starts the processes; throws std::runtime_error when they cannot start.
  virtual void start(const Config& config) = 0;
  // Stops every process started (also done by the destructor).
  virtual void stop() = 0;

  [[nodiscard]] virtual std::uint16_t park_port() const = 0;
  [[nodiscard]] virtual std::uint16_t live_port() const = 0;
  [[nodiscard]] virtual std::uint64_t parked_count() const = 0;
  // The process that holds the parked sockets, and the server.
  [[nodiscard]] virtual pid_t watcher_pid() const = 0;
  [[nodiscard]] virtual pid_t server_pid() const = 0;
};

// The floor: epoll + sendmsg/recvmsg in a few dozen lines (minimal_parker.cpp).
[[nodiscard]] std::unique_ptr<ParkingBackend> make_minimal_parker();

// Who parks with parker in its probe server: the client library (protocol 1.1, or 1.0 with
// ClientOptions::max_minor = 0), or the bench's RawSession (raw_session.hpp) speaking 1.0 or
// 1.1 — to compare the two versions with the same owner code.
enum class ParkerOwner { client, client_1_0, raw_1_0, raw_1_1 };

// Parker's backend with the daemon in reach, for a scenario that acts on parker itself
// (handover: a successor takes the socket over, and is then the daemon the backend stops).
class ParkerDaemonBackend : public ParkingBackend {
 public:
  // parker's socket (valid once started).
  [[nodiscard]] virtual std::filesystem::path daemon_socket() const = 0;
  // From now on `successor` is the daemon stop() stops; returns the process it was.
  [[nodiscard]] virtual ChildProcess replace_daemon(ChildProcess successor) = 0;
  // Connections the probe server still holds itself: waiting for credit, or (1.1) parked and
  // not yet confirmed. 0 once parker has everything.
  [[nodiscard]] virtual std::uint64_t in_hand() const = 0;
};

// Parker itself (parking_backend_parker.cpp), named "parker" (client), "parker-client-1.0",
// "parker-raw-1.0" or "parker-raw-1.1". Returns nullptr and sets `why` while it cannot run (parker or its
// client library not built).
[[nodiscard]] std::unique_ptr<ParkingBackend> make_parker_backend(const Config& config, std::string& why,
                                                                  ParkerOwner owner = ParkerOwner::client);
[[nodiscard]] std::unique_ptr<ParkerDaemonBackend> make_parker_daemon_backend(const Config& config, std::string& why,
                                                                              ParkerOwner owner = ParkerOwner::client);

}  // namespace parker::bench
