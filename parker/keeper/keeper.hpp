// Keeper: the parker-keeper process's loop. It listens on its own socket for parker (the
// running one, and for a moment also its successor or its restarted self), keeps what they
// send in a KeptStore, and gives copies of it all to a parker that starts after a crash.
// Each peer's keeper level (protocol.hpp, kKeeperLevel) is agreed in its hello: a parker of
// an older version is sent only what it can read.
//
// Single-threaded, blocking, poll(2)-driven: it holds fds and bookkeeping, nothing more, so
// it has nothing to be fast at but not losing them. A peer that sends something malformed
// loses its connection; the store is not touched by it.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <string>

#include "kept_store.hpp"
#include "parker/frame_reader.hpp"
#include "parker/unique_fd.hpp"

namespace parker::keeper {

struct KeeperConfig {
  std::string socket_path;
  // With no parker connected for this long, the keeper closes what it holds and exits.
  std::chrono::seconds linger{600};
  // Under a service manager (parker-keeper.service): keep running after parker's BYE (with
  // nothing kept) and with no parker connected, so that the next parker, started or
  // restarted, finds this keeper and not one it would start in its own cgroup.
  bool stay = false;
  std::chrono::milliseconds send_timeout{5000};
};

class Keeper {
 public:
  explicit Keeper(KeeperConfig config);
  // Listens, serves until BYE, a signal (TERM, INT) or the linger time (with `stay`: until a
  // signal); the exit status.
  int run();

 private:
  struct Peer {
    UniqueFd socket;
    protocol::FrameReader reader;
    bool said_hello = false;
    // The keeper protocol level of this peer's session: the lower of its hello's and ours
    // (protocol.hpp, kKeeperLevel). Below 1 it is sent no held wake's unsent bytes.
    std::uint64_t level = 0;
  };

  void accept_peers();
  // False when the peer must go (it hung up, or sent what it should not).
  bool serve(Peer& peer);
  bool handle(Peer& peer, protocol::Frame& frame);
  bool restore(Peer& peer);
  bool send(Peer& peer, const protocol::Message& message, std::span<const int> fds = {});

  KeeperConfig config_;
  KeptStore store_;
  UniqueFd listener_;
  std::list<Peer> peers_;
  bool stop_ = false;
  int exit_status_ = 0;
};

}  // namespace parker::keeper
