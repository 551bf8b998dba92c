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
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core_context.hpp"
#include "output_queue.hpp"
#include "parker/frame_reader.hpp"
#include "parker/peer_credentials.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

class Pool;

class ControlSession {
 public:
  ControlSession(CoreContext& core, UniqueFd fd, PeerCredentials peer, std::uint64_t id);
  ~ControlSession();
  ControlSession(const ControlSession&) = delete;
  ControlSession& operator=(const ControlSession&) = delete;

  // Starts watching the socket. On failure the session was never started: delete it.
  [[nodiscard]] Error start();

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const PeerCredentials& peer() const noexcept { return peer_; }
  [[nodiscard]] bool is_owner() const noexcept { return state_ == State::owner; }
  [[nodiscard]] bool is_observer() const noexcept { return state_ == State::observer; }
  [[nodiscard]] bool awaiting_hello() const noexcept { return state_ == State::awaiting_hello; }
  [[nodiscard]] bool closed() const noexcept { return state_ == State::closed; }
  [[nodiscard]] std::uint16_t minor() const noexcept { return minor_; }
  [[nodiscard]] std::uint64_t connected_at() const noexcept { return connected_at_; }
  // How much is waiting to go to this peer: wakes pending plus fds queued.
  [[nodiscard]] std::size_t load() const noexcept { return pending_wakes_.size() + out_.queued_fds(); }
  [[nodiscard]] std::uint32_t credit() const noexcept { return credit_; }
  // An owner that may still park (not leaving, parker not stopping).
  [[nodiscard]] bool wants_credit() const noexcept { return state_ == State::owner && !leaving_ && !finishing_; }
  [[nodiscard]] std::size_t unacked_wakes() const noexcept { return unacked_held_; }
  // Bytes queued for the peer and not yet written.
  [[nodiscard]] std::size_t queued_output_bytes() const noexcept { return out_.queued_bytes(); }

  // Hand-over: a frame whose fds parker keeps (it closes them once the successor has all).
  void send_lent(const protocol::Message& message, std::vector<int> fds);
  void queue_wake(WakeItem item);
  void queue_closed(protocol::CloseRecord record);
  // Grants more park credit when the session is short of it and parker has room.
  void top_up_credit();
  // Asks a 1.1 owner holding more than `keep` credit to give the rest back (RECLAIM).
  void reclaim_credit_above(std::uint32_t keep);
  // Encodes pending records and writes what the socket takes.
  void pump();
  // Resumes reading after parker ran short of descriptor room (see read_input).
  void resume_input();
  // Shutdown: deliver what is queued, then a fatal ERROR shutting_down, then close.
  void finish();
  // Sends a fatal ERROR (best effort) and closes: parker ends the session.
  void fail(protocol::ErrorCode code, std::string text);
  // Closes now because the peer went away (or its socket failed). Wakes it may not have
  // adopted go back to the pool. Idempotent.
  void close() { close(Ending::peer_gone); }

  bool dirty = false;  // in Daemon::dirty_

 private:
  enum class State { awaiting_hello, owner, observer, closed };
  // Who ended the session decides who owns what was in flight (docs/PROTOCOL.md, 1.1):
  // the peer (it died, or closed): everything it has not acknowledged is still parker's;
  // parker (fatal error, shutdown): whole frames already written are the owner's.
  enum class Ending { peer_gone, by_parker };

  // A WAKE frame written whole on a 1.1 session, its records numbered from first_seq: parker
  // keeps its copies of their fds until the owner acknowledges them. A record whose fd is
  // gone has been let go (acknowledged, or parked again by the owner before its ACK).
  struct UnackedFrame {
    std::uint64_t first_seq = 0;
    WrittenWakes wakes;
  };

  static void on_poll(uv_poll_t* handle, int status, int events) noexcept;
  static void on_closed(uv_handle_t* handle) noexcept;
  void close(Ending ending);
  // Reads per readiness event, so that one busy peer does not starve the others (the poll
  // is level-triggered: it calls again). One 64 KiB read can hold hundreds of WRITEs to
  // hundreds of parked sockets each, so the sockets written through bound an event too
  // (every frame of a read is handled: an event goes over by at most one read's worth).
  static constexpr int kReadsPerEvent = 16;
  static constexpr std::uint64_t kWriteTargetsPerEvent = 4096;
  static constexpr int kToTheEnd = std::numeric_limits<int>::max();  // no bound at all
  void read_input(int max_reads = kReadsPerEvent);
  [[nodiscard]] bool handle_buffered_frames(bool to_the_end);
  void sync_reader_fds();
  void read_to_the_end();
  void drop_unread_output();
  void closed_unsent(std::size_t fds);
  [[nodiscard]] static bool is_query(protocol::MessageType type) noexcept;
  void handle(protocol::Frame& frame);
  void on_message(protocol::Hello& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Park& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Recall& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Drop& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::StatsRequest& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::ListRequest& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Ack& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::InventoryRequest& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Goodbye& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::CreditReturn& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::TakeOver& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::Taken& m, std::vector<UniqueFd>& fds);
  // 1.1 write-through and keep-alive rules (control_session_writes.cpp)
  void on_message(protocol::Write& m, std::vector<UniqueFd>& fds);
  void on_message(protocol::KeepaliveRules& m, std::vector<UniqueFd>& fds);
  // The reason a park record's keep-alive rule set refuses it, if any.
  [[nodiscard]] std::optional<protocol::RejectReason> check_keepalive_set(const protocol::ParkRecord& record) const;
  template <class Other>
  void on_message(Other& m, std::vector<UniqueFd>& fds);  // not for parker: bad_frame
  [[nodiscard]] bool require_owner(std::string_view what);
  [[nodiscard]] bool require_minor_1(protocol::MessageType type);

  void reject_all(protocol::Park& m, std::vector<UniqueFd>& fds, protocol::RejectReason reason);
  void send(const protocol::Message& message, std::vector<UniqueFd> fds = {});
  void send_error(protocol::ErrorCode code, bool fatal, std::uint64_t id, std::string text);
  void confirm_parks();
  void encode_pending();
  void send_full_wake_frames();
  void encode_inventory();
  void take_flush_result(OutputQueue::FlushResult& result);
  void release_acked(std::uint64_t upto);
  void release_unacked_id(std::uint64_t id);
  // Parker's copy of the wake numbered `seq`, if it still holds one.
  [[nodiscard]] UniqueFd* unacked_fd(std::uint64_t seq) noexcept;
  void index_unacked();
  void forget_unacked_index();
  void leave_pool(Ending ending);
  void return_unsent(Pool& pool, bool include_started);
  void give_back_credit();
  void update_poll();
  [[nodiscard]] bool input_paused() const noexcept;
  [[nodiscard]] std::uint64_t last_write_handled() const noexcept;

  CoreContext& core_;
  uv_poll_t poll_{};
  UniqueFd fd_;
  PeerCredentials peer_;
  std::uint64_t id_;
  std::uint64_t connected_at_ = 0;
  State state_ = State::awaiting_hello;
  std::uint16_t minor_ = 0;  // the minor version negotiated at HELLO
  Pool* pool_ = nullptr;
  std::uint32_t credit_ = 0;  // park records this peer may still send
  std::deque<std::uint32_t> reclaims_asked_;  // RECLAIMs sent and not yet answered, in order
  std::uint32_t reclaim_outstanding_ = 0;    // their sum
  protocol::FrameReader reader_;
  std::size_t reader_fds_ = 0;  // fds in reader_ not yet taken by a frame (counted in Capacity)
  OutputQueue out_;
  std::deque<WakeItem> pending_wakes_;
  std::vector<protocol::CloseRecord> pending_closed_;

  // 1.1: acknowledged wakes. Records are numbered 1, 2, ... in the order their frames are
  // written; unacked_ holds the frames written whole with a record not yet acknowledged,
  // oldest first (the front one may be acknowledged in part).
  std::deque<UnackedFrame> unacked_;
  std::uint64_t wakes_written_ = 0;  // seq of the last record written whole
  std::uint64_t wakes_acked_ = 0;    // the highest ACK handled
  std::unordered_map<std::uint64_t, std::uint64_t> unacked_ids_;  // id -> seq, when indexed
  bool unacked_indexed_ = false;  // see index_unacked()
  std::size_t unacked_held_ = 0;  // records of unacked_ whose fd parker still holds

  // 1.1: confirmed parks. Park records of this session are numbered in arrival order.
  std::uint64_t parks_handled_ = 0;    // records handled (parked or REJECTED)
  std::uint64_t parks_confirm_sent_ = 0;   // the count in the last PARKED queued
  std::uint64_t parks_confirm_written_ = 0;  // the count in the last PARKED written whole
  std::deque<std::pair<std::uint64_t, std::uint64_t>> provisional_;  // (seq, id) accepted, not yet confirmed

  // 1.1: INVENTORY in progress: the ids parked when it was asked, sent in bounded frames.
  std::vector<std::uint64_t> inventory_;
  std::size_t inventory_next_ = 0;
  bool inventory_active_ = false;

  // 1.1: WRITE frames of this session, numbered as they arrive (WRITE_RESULT names them).
  std::uint64_t writes_handled_ = 0;
  std::uint64_t write_targets_ = 0;   // sockets named by those WRITEs (bounds an event's work)

  bool leaving_ = false;  // the owner said GOODBYE
  int poll_events_ = 0;
  bool started_ = false;
  bool paused_for_room_ = false;
  bool frames_held_ = false;  // the output mark stopped handle_buffered_frames with bytes left
  bool finishing_ = false;
  bool goodbye_queued_ = false;  // the shutdown ERROR is in out_
};

}  // namespace parker::daemon
