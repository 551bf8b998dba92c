// KeeperLink: parker's side of parker-keeper (parker/keeper/), the process that holds a copy
// of every connection parker parks, so a parker that dies loses none of them.
//
// What it tells the keeper, in order, on one stream (docs/PROTOCOL.md, "The keeper"):
//   a park was accepted         -> HANDOVER record with the fd (the keeper gets its own copy)
//   a parked socket was woken   -> KEEP_UPDATE woken        (the keeper's copy: a held wake)
//   ... write_blocked           -> KEEP_UPDATE woken_unsent (a held wake with the unsent bytes;
//                                  keeper level 1, else `woken`: the bytes would not survive)
//   the owner has it for sure   -> KEEP_UPDATE forget_woken (ACK; sent on a 1.0 session)
//   parker closed or let go     -> KEEP_UPDATE forget
// and the one rule that makes a crash lose nothing: an owner learns nothing the keeper does
// not know yet. Sessions write nothing (no PARKED, no WAKE) while caught_up() is false; the
// daemon writes the keeper's batch first in every flush.
//
// fds in a batch not yet written are only borrowed from the ParkedTable or WakeItem that
// owns them: every path that closes one says forget first, which drops it from the batch.
// Only when the keeper's socket is full are the fds of a batch duplicated, to own them while
// it waits.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blocking_conversation.hpp"
#include "parker/error.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

class KeeperLink {
 public:
  // Connects to the keeper at `path`, starting `keeper_exe --socket path` (detached, in a
  // session of its own, so it outlives us) when nobody listens there, and says hello.
  // Blocking, before the loop runs. `held` is set to how many connections the keeper holds;
  // null with `why` set when there is no keeper to be had.
  static std::unique_ptr<KeeperLink> open(const std::string& path, const std::string& keeper_exe,
                                          std::uint64_t& held, std::string& why);
  // Blocking: copies of everything the keeper holds (a parker that starts after a crash).
  [[nodiscard]] std::string restore(std::vector<HandoverItem>& out);

  // From here on it works on the loop. `caught_up` is called when a batch that had to wait
  // for the keeper's socket has gone, by whichever flush() wrote it; `lost` when the keeper
  // went away.
  void start(uv_loop_t* loop, std::function<void()> caught_up, std::function<void()> lost);
  void close() noexcept;

  void kept(const protocol::HandoverRecord& record, int fd);
  // `unsent`: woken_unsent's bytes (the WAKE_UNSENT record's). A keeper below level 1 is told
  // `woken` instead.
  void update(protocol::KeepOp op, const std::string& pool, std::uint64_t id, std::string_view unsent = {});
  // Writes what is pending; true when nothing is left to write (sessions may write).
  bool flush();
  // Without a keeper (lost) nothing waits for it.
  [[nodiscard]] bool caught_up() const noexcept { return !ok_ || (pending_.empty() && queued_.empty()); }
  [[nodiscard]] bool connected() const noexcept { return ok_; }
  // The keeper protocol level agreed in hello (protocol.hpp, kKeeperLevel).
  [[nodiscard]] std::uint64_t level() const noexcept { return level_; }
  // Blocking: everything pending is written (before fds it borrows are handed away).
  void drain();
  // Blocking, at a clean stop: the keeper may exit (everything went back to owners).
  void bye();

  ~KeeperLink();

 private:
  explicit KeeperLink(UniqueFd socket);
  struct Pending {
    protocol::HandoverRecord record;  // kind parked/held: a HANDOVER record
    int fd = -1;                      // borrowed
  };
  struct Queued {
    std::vector<std::byte> bytes;
    std::vector<UniqueFd> fds;  // owned while the frame waits (duplicates)
    std::size_t sent = 0;
  };
  void encode_pending();
  void fail(const std::string& why);
  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;

  UniqueFd socket_;
  BlockingConversation talk_;                     // hello, restore and bye: before and after the loop
  std::vector<Pending> pending_;                  // KEEP records of this iteration
  std::vector<protocol::KeepUpdateRecord> updates_;
  std::deque<Queued> queued_;                     // frames the socket did not take
  std::function<void()> caught_up_, lost_;
  uv_poll_t* poll_ = nullptr;                     // freed in its close callback
  bool ok_ = true;
  bool held_back_ = false;                        // flush() said "wait": tell caught_up_ when done
  std::uint64_t level_ = 0;                       // the lower of the keeper's and ours
};

}  // namespace parker::daemon
