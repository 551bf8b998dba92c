// OutputQueue: the frames waiting to go to one peer, each kept as a structured record — its
// bytes, the fds it carries, and for a WAKE frame the records those fds belong to — until
// the bytes are written. So a peer's death hands back its unsent wakes as they are (nothing
// is decoded again), and a protocol 1.1 session keeps parker's copy of every woken fd until
// the owner acknowledges it.
//
// Ownership of the fds of a frame:
//   * REJECTED, and WAKE on a 1.0 session: ours until the frame's first byte is sent (the
//     fds ride on it); then the peer has its own copies and ours are closed.
//   * WAKE on a 1.1 session (keep_woken): ours until the frame is fully written; then the
//     frame's records and fds move out together through FlushResult::written_wakes (the
//     session keeps them, frame by frame, until ACK). A peer that dies before reading a
//     whole frame cannot have adopted any of its fds, so a frame not fully written is still
//     wholly ours.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "parker/error.hpp"
#include "parker/protocol.hpp"
#include "parker/unique_fd.hpp"
#include "wake_item.hpp"

namespace parker::daemon {

struct OutgoingFrame {
  std::vector<std::byte> bytes;                 // one encoded frame, never empty
  std::vector<UniqueFd> fds;                    // fds[i] belongs to record i
  std::vector<protocol::WakeRecord> wakes;      // WAKE frames: the records (else empty)
  std::vector<std::uint64_t> woken_ns;          // WAKE frames: WakeItem::woken_ns of each record (may be empty)
  std::vector<protocol::CloseRecord> closes;    // CLOSED frames: the records, for the pool if never written whole
  std::uint64_t confirms_parks = 0;             // PARKED frames: the count they confirm
  std::vector<int> lent_fds;                    // HANDOVER frames: sent, not owned (when `fds` is empty)
};

// The wakes of one WAKE frame written whole on a 1.1 session: records[i] goes with fds[i].
// Moved as a whole (three vectors), not record by record: a mass wake hands over thousands.
struct WrittenWakes {
  std::vector<protocol::WakeRecord> records;
  std::vector<UniqueFd> fds;
  std::vector<std::uint64_t> woken_ns;  // WakeItem::woken_ns of each record (may be empty)
  [[nodiscard]] std::uint64_t woken_ns_of(std::size_t i) const noexcept {
    return i < woken_ns.size() ? woken_ns[i] : 0;
  }
};

class OutputQueue {
 public:
  // keep_woken: the 1.1 rule for WAKE frames (see above).
  void set_keep_woken(bool keep) noexcept { keep_woken_ = keep; }
  [[nodiscard]] bool keeps_woken() const noexcept { return keep_woken_; }

  void push(OutgoingFrame frame);

  struct FlushResult {
    Error error;                          // ok, EAGAIN (socket full), or the socket's error
    std::size_t fds_released = 0;         // fds parker no longer owns (closed here)
    std::vector<WrittenWakes> written_wakes;  // keep_woken: WAKE frames now whole at the peer
    std::vector<std::uint64_t> handed_ids;  // not keep_woken (1.0): WAKE records whose fds went with a first byte
    std::uint64_t parks_confirmed = 0;    // the highest PARKED count fully written (0: none)
    std::size_t bytes_written = 0;
  };
  [[nodiscard]] FlushResult flush(int socket);

  // The wakes of frames whose fds are still ours, with those fds, in order; their frames
  // leave the queue. `include_started`: also a partly written front frame (only when the
  // connection is being closed — removing it mid-stream would corrupt the byte stream).
  [[nodiscard]] std::vector<WakeItem> take_wakes(bool include_started);
  // The records of CLOSED frames not written whole, in order (`include_started` as above);
  // their frames leave the queue. A peer cannot have read a record of a frame it did not
  // get whole, so they go back to the pool, for another session of it.
  [[nodiscard]] std::vector<protocol::CloseRecord> take_closes(bool include_started);
  // Drops everything still queued; returns how many fds that closed.
  std::size_t clear() noexcept;
  // The peer is gone: drops every frame but what goes back to the pool — WAKE frames whose
  // fds are still ours (take_wakes) and CLOSED frames (take_closes). Returns how many fds
  // that closed.
  std::size_t drop_all_but_deliveries() noexcept;

  [[nodiscard]] bool empty() const noexcept { return frames_.empty(); }
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  [[nodiscard]] std::size_t queued_fds() const noexcept { return queued_fds_; }
  // Of those, the fds of REJECTED frames (refused parks on their way back).
  [[nodiscard]] std::size_t queued_returned_fds() const noexcept { return queued_returned_fds_; }

 private:
  [[nodiscard]] bool owns_fds_of_started(const OutgoingFrame& f) const noexcept {
    return keep_woken_ && !f.wakes.empty();
  }
  // A WAKE frame whose fds are still ours (not gone with a first byte, 1.0).
  [[nodiscard]] static bool holds_wakes(const OutgoingFrame& f) noexcept { return !f.wakes.empty() && !f.fds.empty(); }
  template <class Removes>
  void remove_frames(Removes removes);

  std::deque<OutgoingFrame> frames_;
  std::size_t front_sent_ = 0;    // bytes of the front frame already written
  std::size_t queued_bytes_ = 0;  // bytes not yet written
  std::size_t queued_fds_ = 0;    // fds still owned by frames in the queue
  std::size_t queued_returned_fds_ = 0;
  bool keep_woken_ = false;
};

}  // namespace parker::daemon
