#include "heavy/pubsub.hpp"

#include <algorithm>

namespace heavy {

bool PubSub::subscribe(std::string_view channel, PubSubSink* sink) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) it = channels_.emplace(std::string(channel), std::vector<PubSubSink*>{}).first;
  auto& sinks = it->second;
  if (std::find(sinks.begin(), sinks.end(), sink) != sinks.end()) return false;
  sinks.push_back(sink);
  return true;
}

bool PubSub::unsubscribe(std::string_view channel, PubSubSink* sink) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return false;
  auto& sinks = it->second;
  auto pos = std::find(sinks.begin(), sinks.end(), sink);
  if (pos == sinks.end()) return false;
  *pos = sinks.back();
  sinks.pop_back();
  if (sinks.empty()) channels_.erase(it);
  return true;
}

std::size_t PubSub::publish(std::string_view channel, std::string_view message) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return 0;
  for (PubSubSink* sink : it->second) sink->deliver(channel, message);
  return it->second.size();
}

std::size_t PubSub::subscriber_count(std::string_view channel) const {
  auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : it->second.size();
}

}  // namespace heavy
