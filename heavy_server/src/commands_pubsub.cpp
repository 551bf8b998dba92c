// SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH, and RESET, with the RESP2 replies of
// redis 7: every (un)subscription is answered with a three-element array whose count is the
// client's channels and patterns together; messages arrive as ["message", channel, payload]
// or ["pmessage", pattern, channel, payload]. Like redis 7.0 they may be queued in MULTI.
#include <set>
#include <string>

#include "heavy/engine.hpp"

namespace heavy {

namespace {

using Names = std::set<std::string, std::less<>>;

void reply_subscription(ReplyBuffer& reply, std::string_view kind, const std::string_view* name, std::size_t count) {
  reply.array(3);
  reply.bulk(kind);
  if (name != nullptr) {
    reply.bulk(*name);
  } else {
    reply.null_bulk();
  }
  reply.integer(static_cast<long long>(count));
}

// The stats count subscribed connections: called around every change of subscriptions.
void count_subscriber(CommandContext& c, bool was_subscribed) {
  const bool now = c.session().subscribed();
  if (!was_subscribed && now) ++c.engine.stats().subscriber_connections;
  if (was_subscribed && !now) --c.engine.stats().subscriber_connections;
}

void subscribe_names(CommandContext& c, bool patterns) {
  if (c.client.sink == nullptr) return c.reply().error("ERR this client cannot subscribe");
  Session& s = c.session();
  const bool was_subscribed = s.subscribed();
  Names& names = patterns ? s.patterns : s.channels;
  for (std::size_t i = 1; i < c.args.size(); ++i) {
    const std::string_view name = c.args[i];
    if (names.emplace(name).second) {
      if (patterns) {
        c.engine.pubsub().psubscribe(name, c.client.sink);
      } else {
        c.engine.pubsub().subscribe(name, c.client.sink);
      }
    }
    reply_subscription(c.reply(), patterns ? "psubscribe" : "subscribe", &name, s.subscription_count());
  }
  count_subscriber(c, was_subscribed);
}

// Drops one subscription (if held); replies when `reply` (RESET drops them silently).
void unsubscribe_one(CommandContext& c, bool patterns, std::string_view name, bool reply) {
  Session& s = c.session();
  Names& names = patterns ? s.patterns : s.channels;
  if (auto it = names.find(name); it != names.end()) {
    if (patterns) {
      c.engine.pubsub().punsubscribe(name, c.client.sink);
    } else {
      c.engine.pubsub().unsubscribe(name, c.client.sink);
    }
    names.erase(it);
  }
  if (reply) reply_subscription(c.reply(), patterns ? "punsubscribe" : "unsubscribe", &name, s.subscription_count());
}

void unsubscribe_all(CommandContext& c, bool patterns, bool reply) {
  Names& names = patterns ? c.session().patterns : c.session().channels;
  if (names.empty() && reply) {
    reply_subscription(c.reply(), patterns ? "punsubscribe" : "unsubscribe", nullptr, c.session().subscription_count());
  }
  while (!names.empty()) {
    const std::string name = *names.begin();  // copied: erased inside
    unsubscribe_one(c, patterns, name, reply);
  }
}

void unsubscribe_names(CommandContext& c, bool patterns) {
  const bool was_subscribed = c.session().subscribed();
  if (c.args.size() == 1) {
    unsubscribe_all(c, patterns, true);
  } else {
    for (std::size_t i = 1; i < c.args.size(); ++i) unsubscribe_one(c, patterns, c.args[i], true);
  }
  count_subscriber(c, was_subscribed);
}

void cmd_subscribe(CommandContext& c) { subscribe_names(c, false); }
void cmd_psubscribe(CommandContext& c) { subscribe_names(c, true); }
void cmd_unsubscribe(CommandContext& c) { unsubscribe_names(c, false); }
void cmd_punsubscribe(CommandContext& c) { unsubscribe_names(c, true); }

void cmd_publish(CommandContext& c) {
  c.reply().integer(static_cast<long long>(c.engine.pubsub().publish(c.args[1], c.args[2])));
}

// RESET (redis 6.2+): the connection as if new — out of MULTI, no subscriptions, db 0, no
// name — answered +RESET. Its id and counters stay.
void cmd_reset(CommandContext& c) {
  Session& s = c.session();
  const bool was_subscribed = s.subscribed();
  s.discard_multi();
  unsubscribe_all(c, false, false);
  unsubscribe_all(c, true, false);
  count_subscriber(c, was_subscribed);
  s.db = 0;
  s.name.clear();
  c.reply().simple("RESET");
}

constexpr CommandSpec kCommands[] = {
    {"subscribe", -2, kCmdAllowedWhileSubscribed, cmd_subscribe},
    {"unsubscribe", -1, kCmdAllowedWhileSubscribed, cmd_unsubscribe},
    {"psubscribe", -2, kCmdAllowedWhileSubscribed, cmd_psubscribe},
    {"punsubscribe", -1, kCmdAllowedWhileSubscribed, cmd_punsubscribe},
    {"publish", 3, kCmdNone, cmd_publish},
    {"reset", 1, kCmdAllowedWhileSubscribed | kCmdNotQueued, cmd_reset},
};

}  // namespace

std::span<const CommandSpec> pubsub_commands() { return kCommands; }

}  // namespace heavy
