// ParkedSubscriber: stands in the channel and pattern registry for a subscribed client while
// parker holds its socket, so PUBLISH still counts it (the true receiver count) and can call it
// back.
//
// A delivery is kept here and the client recalled; when parker hands the socket back, the
// restored connection takes the subscriptions over and the kept messages are sent first (in a
// graceful restart they go into its blob instead, for the successor to send). Only subscribers
// pay for this object; a parked connection without subscriptions costs an index entry and
// nothing else.
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

class ParkedSubscriber final : public PubSubSink {
 public:
  // Messages kept for one parked subscriber beyond this are dropped and the client is closed
  // when it comes back, as an active subscriber that does not read would be.
  static constexpr std::size_t kPendingLimit = 32 * 1024 * 1024;

  // `recall` asks parker for the connection back; it must only queue (PUBLISH is iterating).
  ParkedSubscriber(std::uint64_t id, std::vector<std::string> channels, std::vector<std::string> patterns,
                   std::function<void(std::uint64_t)>* recall)
      : id_(id), channels_(std::move(channels)), patterns_(std::move(patterns)), recall_(recall) {}
  ParkedSubscriber(const ParkedSubscriber&) = delete;
  ParkedSubscriber& operator=(const ParkedSubscriber&) = delete;
  ~ParkedSubscriber() = default;

  void deliver(std::string_view channel, std::string_view message) override {
    if (keep(channel.size() + message.size())) {
      pending_.array(3);
      pending_.bulk("message");
      pending_.bulk(channel);
      pending_.bulk(message);
    }
  }
  void deliver_pattern(std::string_view pattern, std::string_view channel, std::string_view message) override {
    if (keep(pattern.size() + channel.size() + message.size())) {
      pending_.array(4);
      pending_.bulk("pmessage");
      pending_.bulk(pattern);
      pending_.bulk(channel);
      pending_.bulk(message);
    }
  }

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const std::vector<std::string>& channels() const noexcept { return channels_; }
  [[nodiscard]] const std::vector<std::string>& patterns() const noexcept { return patterns_; }
  // The kept messages, as the RESP2 pushes the connection would have sent.
  [[nodiscard]] std::string_view pending() const noexcept { return pending_.pending(); }
  [[nodiscard]] bool over_limit() const noexcept { return over_limit_; }
  [[nodiscard]] bool wants_recall() const noexcept { return !pending_.empty() || over_limit_; }
  // The recall was lost with the connection to parker: send it again on reconnect.
  void recall_again() {
    recall_sent_ = true;
    (*recall_)(id_);
  }

 private:
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
  ReplyBuffer pending_;
  std::size_t pending_bytes_ = 0;
  bool recall_sent_ = false;
  bool over_limit_ = false;
};

}  // namespace heavy
