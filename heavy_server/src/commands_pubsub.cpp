// SUBSCRIBE UNSUBSCRIBE PUBLISH, with RESP2 replies: every (un)subscription is answered with
// a three-element array, and each message arrives as ["message", channel, payload].
#include "heavy/engine.hpp"

namespace heavy {

namespace {

void reply_subscription(ReplyBuffer& reply, std::string_view kind, const std::string_view* channel,
                        std::size_t count) {
  reply.array(3);
  reply.bulk(kind);
  if (channel != nullptr) {
    reply.bulk(*channel);
  } else {
    reply.null_bulk();
  }
  reply.integer(static_cast<long long>(count));
}

void cmd_subscribe(CommandContext& c) {
  if (c.client.sink == nullptr) return c.reply().error("ERR this client cannot subscribe");
  Session& s = c.session();
  const bool was_subscribed = s.subscribed();
  for (std::size_t i = 1; i < c.args.size(); ++i) {
    const std::string_view channel = c.args[i];
    if (s.channels.emplace(channel).second) c.engine.pubsub().subscribe(channel, c.client.sink);
    reply_subscription(c.reply(), "subscribe", &channel, s.channels.size());
  }
  if (!was_subscribed && s.subscribed()) ++c.engine.stats().subscriber_connections;
}

void unsubscribe_one(CommandContext& c, std::string_view channel) {
  Session& s = c.session();
  auto it = s.channels.find(channel);
  if (it != s.channels.end()) {
    c.engine.pubsub().unsubscribe(channel, c.client.sink);
    s.channels.erase(it);
  }
  reply_subscription(c.reply(), "unsubscribe", &channel, s.channels.size());
}

void cmd_unsubscribe(CommandContext& c) {
  Session& s = c.session();
  const bool was_subscribed = s.subscribed();
  if (c.args.size() == 1) {
    if (s.channels.empty()) reply_subscription(c.reply(), "unsubscribe", nullptr, 0);
    while (!s.channels.empty()) {
      const std::string channel = *s.channels.begin();  // copied: erased inside
      unsubscribe_one(c, channel);
    }
  } else {
    for (std::size_t i = 1; i < c.args.size(); ++i) unsubscribe_one(c, c.args[i]);
  }
  if (was_subscribed && !s.subscribed()) --c.engine.stats().subscriber_connections;
}

void cmd_publish(CommandContext& c) {
  c.reply().integer(static_cast<long long>(c.engine.pubsub().publish(c.args[1], c.args[2])));
}

constexpr CommandSpec kCommands[] = {
    {"subscribe", -2, kCmdAllowedWhileSubscribed | kCmdNoMulti, cmd_subscribe},
    {"unsubscribe", -1, kCmdAllowedWhileSubscribed | kCmdNoMulti, cmd_unsubscribe},
    {"publish", 3, kCmdNone, cmd_publish},
};

}  // namespace

std::span<const CommandSpec> pubsub_commands() { return kCommands; }

}  // namespace heavy
