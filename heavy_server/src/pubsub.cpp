#include "heavy/pubsub.hpp"

#include <algorithm>

#include "heavy/glob_match.hpp"

namespace heavy {

bool PubSub::add(Registry& registry, std::string_view name, PubSubSink* sink) {
  auto it = registry.find(name);
  if (it == registry.end()) it = registry.emplace(std::string(name), std::vector<PubSubSink*>{}).first;
  auto& sinks = it->second;
  if (std::find(sinks.begin(), sinks.end(), sink) != sinks.end()) return false;
  sinks.push_back(sink);
  return true;
}

bool PubSub::remove(Registry& registry, std::string_view name, PubSubSink* sink) {
  auto it = registry.find(name);
  if (it == registry.end()) return false;
  auto& sinks = it->second;
  auto pos = std::find(sinks.begin(), sinks.end(), sink);
  if (pos == sinks.end()) return false;
  *pos = sinks.back();
  sinks.pop_back();
  if (sinks.empty()) registry.erase(it);
  return true;
}

bool PubSub::subscribe(std::string_view channel, PubSubSink* sink) { return add(channels_, channel, sink); }
bool PubSub::unsubscribe(std::string_view channel, PubSubSink* sink) { return remove(channels_, channel, sink); }
bool PubSub::psubscribe(std::string_view pattern, PubSubSink* sink) { return add(patterns_, pattern, sink); }
bool PubSub::punsubscribe(std::string_view pattern, PubSubSink* sink) { return remove(patterns_, pattern, sink); }

std::size_t PubSub::publish(std::string_view channel, std::string_view message) {
  std::size_t receivers = 0;
  if (auto it = channels_.find(channel); it != channels_.end()) {
    for (PubSubSink* sink : it->second) sink->deliver(channel, message);
    receivers += it->second.size();
  }
  for (const auto& [pattern, sinks] : patterns_) {
    if (!glob_match(pattern, channel)) continue;
    for (PubSubSink* sink : sinks) sink->deliver_pattern(pattern, channel, message);
    receivers += sinks.size();
  }
  return receivers;
}

std::size_t PubSub::subscriber_count(std::string_view channel) const {
  auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : it->second.size();
}

}  // namespace heavy
