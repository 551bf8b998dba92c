// RawSession: an owner session with parker that speaks the wire protocol itself (codec,
// SendQueue, FrameReader: the pieces parker::Client is built from) at the minor version it
// is told, 0 or 1. It exists because the client library offers 1.1 or later, and the bench
// must measure a 1.0 session through the same parker to show what acknowledgements cost.
//
// It mirrors the part of parker::Client the bench uses (connect, park, recall, flush,
// on_readable, on_writable, fd, connected, wants_write, has_queued, the timer pair) and
// reports through the same ClientCallbacks, so a loop written for one drives the other
// (owner_loop.hpp). Its 1.1 rules are the client library's: a park's fd stays ours until
// PARKED covers it (lent to the frame, closed then); a wake is acknowledged once on_wake has
// returned, by one cumulative ACK at the next flush(), written before any PARK.
//
// Deliberately small: no reconnect (a lost session fails the benchmark: on_disconnected),
// no deadlines or flags, no size checks, no DROP, no INVENTORY or GOODBYE. RECLAIM is answered.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <vector>

#include "parker/client.hpp"
#include "parker/error.hpp"
#include "parker/frame_reader.hpp"
#include "parker/send_queue.hpp"
#include "parker/unique_fd.hpp"

namespace parker::bench {

class RawSession {
 public:
  RawSession(ClientCallbacks callbacks, std::uint16_t minor) : callbacks_(std::move(callbacks)), minor_(minor) {}
  RawSession(const RawSession&) = delete;
  RawSession& operator=(const RawSession&) = delete;

  // Connects to parker at `path` and sends HELLO (major 1, the minor given) for `pool`.
  Error connect(std::string_view path, std::string_view pool);

  // As parker::Client: ENOTCONN before WELCOME, ENOBUFS without credit; the fd moves in.
  // No socket check, and no options (they are all 0 on the wire).
  Error park(UniqueFd& fd, std::uint64_t id, std::string_view blob, const ParkOptions& = {});
  Error recall(std::uint64_t id);
  void flush();
  void on_readable();
  void on_writable() { write_out(); }
  // No timers: kept so that a loop written for parker::Client compiles against this too.
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> timer_deadline() const { return std::nullopt; }
  void on_timer() {}

  [[nodiscard]] int fd() const noexcept { return socket_.get(); }
  [[nodiscard]] bool connected() const noexcept { return socket_ && welcomed_; }
  [[nodiscard]] bool wants_write() const noexcept { return !send_queue_.empty(); }
  [[nodiscard]] bool has_queued() const noexcept { return !queued_parks_.empty() || !queued_recalls_.empty(); }
  [[nodiscard]] std::uint32_t credit() const noexcept { return credit_; }
  // The minor parker agreed to (WELCOME), meaningful when connected().
  [[nodiscard]] std::uint16_t protocol_minor() const noexcept { return welcome_minor_; }
  [[nodiscard]] std::size_t unconfirmed_parks() const noexcept { return unconfirmed_.size(); }

 private:
  struct Unconfirmed {
    std::uint64_t seq = 0;  // its number among this session's park records
    std::uint64_t id = 0;
    UniqueFd fd;
  };

  [[nodiscard]] bool exactly_once() const noexcept { return welcome_minor_ >= protocol::kMinorExactlyOnce; }
  void push(const protocol::Message& message, std::vector<UniqueFd> fds = {}, std::vector<int> lent = {});
  void write_out();
  void dispatch(protocol::Frame& frame);
  void fail(Error why);

  ClientCallbacks callbacks_;
  std::uint16_t minor_;
  UniqueFd socket_;
  protocol::FrameReader reader_;
  SendQueue send_queue_;
  bool welcomed_ = false;
  std::uint16_t welcome_minor_ = 0;
  std::uint32_t credit_ = 0;
  struct Queued {
    protocol::ParkRecord record;
    UniqueFd fd;
  };
  std::vector<Queued> queued_parks_;
  std::vector<std::uint64_t> queued_recalls_;
  // 1.1
  std::deque<Unconfirmed> unconfirmed_;
  std::uint64_t parks_sent_ = 0;
  std::uint64_t parks_sent_at_read_ = 0;
  std::uint64_t wakes_received_ = 0;  // = adopted: every on_wake has returned when counted
  std::uint64_t ack_sent_ = 0;
};

}  // namespace parker::bench
