// ControlSession: one peer connected to parker's socket — an owner (a server that parks
// connections of its pool) or an observer (parkerctl: stats and list).
//
// Input: uv_poll readable -> FrameReader (frames with exactly their fds) -> one handler per
// message type. Output: replies go straight into the OutputQueue; wakes and CLOSED records
// collect in `pending_*` during a loop iteration and are encoded into batched frames when
// the daemon flushes (pump). The session polls for writable only while output is queued;
// it stops reading while its queued output is over a high-water mark, so a peer that does
// not read cannot make parker buffer without bound. Wakes are never dropped: they stay
// pending, and if the session dies they go back to the pool (another session, or held).
//
// Memory: allocated with new, freed only in the poll handle's close callback.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "output_queue.hpp"
#include "parker/frame_reader.hpp"
#include "parker/peer_credentials.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

class Daemon;
class Pool;

class ControlSession {
 public:
  ControlSession(Daemon& daemon, UniqueFd fd, PeerCredentials peer, std::uint64_t id);
  ~ControlSession();
  ControlSession(const ControlSession&) = delete;
  ControlSession& operator=(const ControlSession&) = delete;

  // Starts watching the socket. On failure the session was never started: delete it.
  [[nodiscard]] Error start();

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const PeerCredentials& peer() const noexcept { return peer_; }
  [[nodiscard]] bool is_owner() const noexcept { return state_ == State::owner; }
  [[nodiscard]] bool is_observer() const noexcept { return state_ == State::observer; }
  [[nodiscard]] bool closed() const noexcept { return state_ == State::closed; }
  // How much is waiting to go to this peer: wakes pending plus fds queued.
  [[nodiscard]] std::size_t load() const noexcept { return pending_wakes_.size() + out_.queued_fds(); }

  void queue_wake(WakeItem item);
  void queue_closed(protocol::CloseRecord record);
  // Grants more park credit when the session is short of it and parker has room.
  void top_up_credit();
  // Encodes pending records and writes what the socket takes.
  void pump();
  // Shutdown: deliver what is queued, then a fatal ERROR shutting_down, then close.
  void finish();
  // Sends a fatal ERROR (best effort) and closes.
  void fail(protocol::ErrorCode code, std::string text);
  // Closes now. Wakes not yet sent go back to the pool. Idempotent.
  void close();

  bool dirty = false;  // in Daemon::dirty_

 private:
  enum class State { awaiting_hello, owner, observer, closed };

  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;
  void read_input();
  void handle(protocol::Frame& frame);
  void on_message(protocol::Hello& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Park& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Recall& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Drop& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::StatsRequest& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::ListRequest& m, std::vector<UniqueFd>& fds);
  template <class Other>
  void on_message(Other& m, std::vector<UniqueFd>& fds);  // not for parker: bad_frame

  void reject_all(protocol::Park& m, std::vector<UniqueFd>& fds, protocol::RejectReason reason);
  void send(const protocol::Message& message, std::vector<UniqueFd> fds = {});
  void send_error(protocol::ErrorCode code, bool fatal, std::uint64_t id, std::string text);
  void encode_pending();
  void rescue_wakes();
  void update_poll();
  [[nodiscard]] bool input_paused() const noexcept;

  Daemon& daemon_;
  uv_poll_t poll_{};
  UniqueFd fd_;
  PeerCredentials peer_;
  std::uint64_t id_;
  State state_ = State::awaiting_hello;
  Pool* pool_ = nullptr;
  std::uint32_t credit_ = 0;  // park records this peer may still send
  protocol::FrameReader reader_;
  OutputQueue out_;
  std::deque<WakeItem> pending_wakes_;
  std::vector<protocol::CloseRecord> pending_closed_;
  int poll_events_ = 0;
  bool started_ = false;
  bool finishing_ = false;
  bool goodbye_queued_ = false;  // the shutdown ERROR is in out_
};

}  // namespace parker::daemon
