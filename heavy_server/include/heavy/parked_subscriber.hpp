// ParkedSubscriber: stands in the channel registry for a SUBSCRIBE'd client while parker holds
// its socket, so PUBLISH still counts it (the true receiver count) and can call it back.
//
// A delivery is kept here and the client recalled; when parker hands the socket back, the
// restored connection takes the subscriptions over and the kept messages are sent first. Only
// subscribers pay for this object; a parked connection without subscriptions costs an index
// entry and nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "heavy/pubsub.hpp"

namespace heavy {

class ParkedSubscriber final : public PubSubSink {
 public:
  // Messages kept for one parked subscriber beyond this are dropped and the client is closed
  // when it comes back, as an active subscriber that does not read would be.
  static constexpr std::size_t kPendingLimit = 32 * 1024 * 1024;

  // `recall` asks parker for the connection back; it must only queue (PUBLISH is iterating).
  ParkedSubscriber(std::uint64_t id, std::vector<std::string> channels, std::function<void(std::uint64_t)>* recall)
      : id_(id), channels_(std::move(channels)), recall_(recall) {}
  ParkedSubscriber(const ParkedSubscriber&) = delete;
  ParkedSubscriber& operator=(const ParkedSubscriber&) = delete;
  ~ParkedSubscriber() = default;

  void deliver(std::string_view channel, std::string_view message) override {
    pending_bytes_ += channel.size() + message.size();
    if (pending_bytes_ > kPendingLimit) {
      over_limit_ = true;
    } else {
      pending_.emplace_back(channel, message);
    }
    if (!recall_sent_) {
      recall_sent_ = true;
      (*recall_)(id_);
    }
  }

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const std::vector<std::string>& channels() const noexcept { return channels_; }
  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& pending() const noexcept { return pending_; }
  [[nodiscard]] bool over_limit() const noexcept { return over_limit_; }
  [[nodiscard]] bool wants_recall() const noexcept { return !pending_.empty() || over_limit_; }
  // The recall was lost with the connection to parker: send it again on reconnect.
  void recall_again() {
    recall_sent_ = true;
    (*recall_)(id_);
  }

 private:
  std::uint64_t id_;
  std::vector<std::string> channels_;
  std::function<void(std::uint64_t)>* recall_;
  std::vector<std::pair<std::string, std::string>> pending_;
  std::size_t pending_bytes_ = 0;
  bool recall_sent_ = false;
  bool over_limit_ = false;
};

}  // namespace heavy
