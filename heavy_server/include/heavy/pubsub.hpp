// PubSub: which receivers listen on which channel.
//
// A receiver is anything that implements PubSubSink: an active connection, and later a
// stand-in for a parked subscriber (the parking code registers one in the connection's place,
// so PUBLISH still counts it and can recall it). deliver() must not subscribe or unsubscribe
// anything, nor close a connection synchronously: PUBLISH is iterating the registry.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "heavy/keyspace.hpp"  // StringHash

namespace heavy {

class PubSubSink {
 public:
  virtual void deliver(std::string_view channel, std::string_view message) = 0;

 protected:
  ~PubSubSink() = default;
};

class PubSub {
 public:
  // True when `sink` was not yet subscribed to `channel`.
  bool subscribe(std::string_view channel, PubSubSink* sink);
  // True when `sink` was subscribed to `channel`.
  bool unsubscribe(std::string_view channel, PubSubSink* sink);
  // Moves every subscription of `from` among `channels` to `to` (parking swaps a connection for
  // its stand-in and back). `to` may be null: the subscriptions are dropped.
  template <class Channels>
  void rebind(const Channels& channels, PubSubSink* from, PubSubSink* to) {
    for (const auto& c : channels) {
      unsubscribe(c, from);
      if (to != nullptr) subscribe(c, to);
    }
  }
  // Delivers to every receiver of `channel`; returns how many there were.
  std::size_t publish(std::string_view channel, std::string_view message);

  [[nodiscard]] std::size_t channel_count() const noexcept { return channels_.size(); }
  [[nodiscard]] std::size_t subscriber_count(std::string_view channel) const;

 private:
  std::unordered_map<std::string, std::vector<PubSubSink*>, StringHash, std::equal_to<>> channels_;
};

}  // namespace heavy
