// ParkedSubscriber: stands in the channel and pattern registry for a subscribed client while
// parker holds its socket, so PUBLISH still counts it (the true receiver count) and can call it
// back.
//
// A delivery goes through parker when it can (protocol 1.1 write-through: WriteThrough below
// takes it, and parker writes it to the parked socket without waking it). Otherwise — no 1.1
// session, a graceful restart, or messages already kept ahead of it — it is kept here and the
// client recalled; when parker hands the socket back, the restored connection takes the
// subscriptions over and the kept messages are sent first (in a graceful restart they go into
// its blob instead, for the successor to send). Only subscribers pay for this object; a parked
// connection without subscriptions costs an index entry and nothing else.
//
// Order: a message handed to write-through is "in flight" until parker answers the WRITE. A
// connection woken meanwhile is not served until every write in flight to it is answered
// (Parking keeps it waiting): those parker did not write come back (keep_returned) and go out
// after the bytes parker could not write (WokenConnection::unsent) and before anything newer.
// A message kept while writes are in flight is newer than all of them, so it waits behind them
// (behind_writes_) until the last is answered: a PUBLISH that lands between the wake and the
// WRITE_RESULT must not overtake what that WRITE_RESULT returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "heavy/pubsub.hpp"
#include "heavy/reply_buffer.hpp"

namespace heavy {

// Parker's write-through, as a stand-in sees it (Parking implements it).
class WriteThrough {
 public:
  // Takes the message for parked connection `id` (pattern empty: a channel message); false
  // when write-through cannot take it now (the caller keeps it and recalls).
  virtual bool write_through(std::uint64_t id, std::string_view pattern, std::string_view channel,
                             std::string_view message) = 0;

 protected:
  ~WriteThrough() = default;
};

class ParkedSubscriber final : public PubSubSink {
 public:
  // Messages kept for one parked subscriber beyond this are dropped and the client is closed
  // when it comes back, as an active subscriber that does not read would be.
  static constexpr std::size_t kPendingLimit = 32 * 1024 * 1024;

  // `recall` asks parker for the connection back; it must only queue (PUBLISH is iterating).
  ParkedSubscriber(std::uint64_t id, std::vector<std::string> channels, std::vector<std::string> patterns,
                   std::function<void(std::uint64_t)>* recall, WriteThrough* writer = nullptr)
      : id_(id), channels_(std::move(channels)), patterns_(std::move(patterns)), recall_(recall), writer_(writer) {}
  ParkedSubscriber(const ParkedSubscriber&) = delete;
  ParkedSubscriber& operator=(const ParkedSubscriber&) = delete;
  ~ParkedSubscriber() = default;

  void deliver(std::string_view channel, std::string_view message) override {
    if (written_through({}, channel, message)) return;
    if (keep(channel.size() + message.size())) {
      ReplyBuffer& kept = newest();
      kept.array(3);
      kept.bulk("message");
      kept.bulk(channel);
      kept.bulk(message);
    }
  }
  void deliver_pattern(std::string_view pattern, std::string_view channel, std::string_view message) override {
    if (written_through(pattern, channel, message)) return;
    if (keep(pattern.size() + channel.size() + message.size())) {
      ReplyBuffer& kept = newest();
      kept.array(4);
      kept.bulk("pmessage");
      kept.bulk(pattern);
      kept.bulk(channel);
      kept.bulk(message);
    }
  }

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const std::vector<std::string>& channels() const noexcept { return channels_; }
  [[nodiscard]] const std::vector<std::string>& patterns() const noexcept { return patterns_; }
  // The kept messages, as the RESP2 pushes the connection would have sent. Complete once no
  // write is in flight (messages kept meanwhile wait behind those writes until then).
  [[nodiscard]] std::string_view pending() const noexcept { return pending_.pending(); }
  // Messages kept while writes were in flight, not yet moved behind what those return.
  [[nodiscard]] std::string_view behind_writes() const noexcept { return behind_writes_.pending(); }
  [[nodiscard]] bool over_limit() const noexcept { return over_limit_; }
  [[nodiscard]] bool wants_recall() const noexcept {
    return !pending_.empty() || !behind_writes_.empty() || over_limit_;
  }
  // Write-through: WRITEs naming it that parker has not answered yet.
  [[nodiscard]] std::size_t writes_in_flight() const noexcept { return in_flight_; }
  // Call after keep_returned for the same WRITE, so that what it returns goes first.
  void write_answered() {
    if (in_flight_ > 0) --in_flight_;
    if (in_flight_ == 0 && !behind_writes_.empty()) {
      pending_.raw(behind_writes_.pending());
      behind_writes_.clear();
    }
  }
  // A WRITE parker did not make (the connection was woken or closed first): the RESP bytes are
  // kept, in order, for the restored connection. `recall`: ask for the connection too (the
  // write could not even be sent).
  void keep_returned(std::string_view resp, bool recall) {
    pending_.raw(resp);
    pending_bytes_ += resp.size();
    if (pending_bytes_ > kPendingLimit) over_limit_ = true;
    if (recall && !recall_sent_) {
      recall_sent_ = true;
      (*recall_)(id_);
    }
  }
  // Woken: later messages are kept (no write-through, no recall: it is on its way back).
  void set_woken() noexcept {
    woken_ = true;
    recall_sent_ = true;
  }
  // The recall was lost with the connection to parker: send it again on reconnect.
  void recall_again() {
    recall_sent_ = true;
    (*recall_)(id_);
  }

 private:
  // Through parker, if nothing is kept ahead of it (order) and the connection is still parked.
  bool written_through(std::string_view pattern, std::string_view channel, std::string_view message) {
    if (writer_ == nullptr || woken_ || over_limit_ || !pending_.empty() || !behind_writes_.empty()) return false;
    if (!writer_->write_through(id_, pattern, channel, message)) return false;
    ++in_flight_;
    return true;
  }
  // Where a message kept now goes: behind the writes in flight, if there are any.
  ReplyBuffer& newest() noexcept { return in_flight_ > 0 ? behind_writes_ : pending_; }
  // Counts a delivery of `bytes`; false when over the limit (it is dropped). Recalls once.
  bool keep(std::size_t bytes) {
    pending_bytes_ += bytes;
    if (pending_bytes_ > kPendingLimit) over_limit_ = true;
    if (!recall_sent_) {
      recall_sent_ = true;
      (*recall_)(id_);
    }
    return !over_limit_;
  }

  std::uint64_t id_;
  std::vector<std::string> channels_;
  std::vector<std::string> patterns_;
  std::function<void(std::uint64_t)>* recall_;
  WriteThrough* writer_;
  std::size_t in_flight_ = 0;
  bool woken_ = false;
  ReplyBuffer pending_;
  ReplyBuffer behind_writes_;
  std::size_t pending_bytes_ = 0;
  bool recall_sent_ = false;
  bool over_limit_ = false;
};

}  // namespace heavy
