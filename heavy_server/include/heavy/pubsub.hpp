// PubSub: which receivers listen on which channel, and on which pattern.
//
// A receiver is anything that implements PubSubSink: an active connection, or a stand-in for a
// parked subscriber (the parking code registers one in the connection's place, so PUBLISH still
// counts it and can recall it). deliver() must not subscribe or unsubscribe anything, nor close
// a connection synchronously: PUBLISH is iterating the registry.
//
// Patterns are matched as redis matches them (glob_match), each PUBLISH against every pattern
// registered: O(patterns), as in redis.
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
  // A message on a channel it subscribed to: ["message", channel, message].
  virtual void deliver(std::string_view channel, std::string_view message) = 0;
  // A message on a channel matching a pattern it subscribed to: ["pmessage", pattern, channel, message].
  virtual void deliver_pattern(std::string_view pattern, std::string_view channel, std::string_view message) = 0;

 protected:
  ~PubSubSink() = default;
};

class PubSub {
 public:
  // True when `sink` was not yet subscribed to `channel`.
  bool subscribe(std::string_view channel, PubSubSink* sink);
  // True when `sink` was subscribed to `channel`.
  bool unsubscribe(std::string_view channel, PubSubSink* sink);
  bool psubscribe(std::string_view pattern, PubSubSink* sink);
  bool punsubscribe(std::string_view pattern, PubSubSink* sink);

  // Moves every subscription of `from` among `channels` and `patterns` to `to` (parking swaps
  // a connection for its stand-in and back). `to` may be null: the subscriptions are dropped.
  template <class Channels, class Patterns>
  void rebind(const Channels& channels, const Patterns& patterns, PubSubSink* from, PubSubSink* to) {
    for (const auto& c : channels) {
      unsubscribe(c, from);
      if (to != nullptr) subscribe(c, to);
    }
    for (const auto& p : patterns) {
      punsubscribe(p, from);
      if (to != nullptr) psubscribe(p, to);
    }
  }
  // Delivers to every receiver of `channel` and of every pattern matching it; returns how many
  // deliveries there were (a receiver of the channel and of a matching pattern counts twice,
  // as in redis).
  std::size_t publish(std::string_view channel, std::string_view message);

  [[nodiscard]] std::size_t channel_count() const noexcept { return channels_.size(); }
  [[nodiscard]] std::size_t pattern_count() const noexcept { return patterns_.size(); }
  [[nodiscard]] std::size_t subscriber_count(std::string_view channel) const;

 private:
  using Registry = std::unordered_map<std::string, std::vector<PubSubSink*>, StringHash, std::equal_to<>>;
  static bool add(Registry& registry, std::string_view name, PubSubSink* sink);
  static bool remove(Registry& registry, std::string_view name, PubSubSink* sink);

  Registry channels_;
  Registry patterns_;
};

}  // namespace heavy
