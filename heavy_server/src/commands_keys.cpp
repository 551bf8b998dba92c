// String keys: GET SET DEL EXISTS INCR DECR INCRBY DECRBY MGET MSET TTL PTTL, and the
// databases: SELECT DBSIZE FLUSHDB FLUSHALL.
#include <charconv>
#include <limits>

#include "heavy/engine.hpp"

namespace heavy {

namespace {

constexpr long long kMaxExpireMs = std::numeric_limits<long long>::max() / 4;

void cmd_get(CommandContext& c) {
  const Value* v = c.db().find(c.args[1], c.now());
  if (v == nullptr) {
    c.reply().null_bulk();
  } else {
    c.reply().bulk(v->data);
  }
}

// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]
void cmd_set(CommandContext& c) {
  bool nx = false, xx = false, get = false, keep_ttl = false;
  long long expire_ms = 0;
  bool has_expire = false;
  for (std::size_t i = 3; i < c.args.size(); ++i) {
    std::string_view opt = c.args[i];
    if (equals_ignore_case(opt, "nx") && !xx) {
      nx = true;
    } else if (equals_ignore_case(opt, "xx") && !nx) {
      xx = true;
    } else if (equals_ignore_case(opt, "get")) {
      get = true;
    } else if (equals_ignore_case(opt, "keepttl") && !has_expire) {
      keep_ttl = true;
    } else if ((equals_ignore_case(opt, "ex") || equals_ignore_case(opt, "px")) && !has_expire && !keep_ttl &&
               i + 1 < c.args.size()) {
      long long amount = 0;
      if (!parse_int64(c.args[i + 1], amount)) return c.reply().error(kErrNotInteger);
      const bool seconds = equals_ignore_case(opt, "ex");
      if (amount <= 0 || amount > (seconds ? kMaxExpireMs / 1000 : kMaxExpireMs)) {
        return c.reply().error("ERR invalid expire time in 'set' command");
      }
      expire_ms = seconds ? amount * 1000 : amount;
      has_expire = true;
      ++i;
    } else {
      return c.reply().error(kErrSyntax);
    }
  }

  Database& db = c.db();
  const Value* old = db.find(c.args[1], c.now());
  if (get) {
    if (old == nullptr) {
      c.reply().null_bulk();
    } else {
      c.reply().bulk(old->data);
    }
  }
  if ((nx && old != nullptr) || (xx && old == nullptr)) {
    if (!get) c.reply().null_bulk();
    return;
  }
  db.set(c.args[1], c.args[2], has_expire ? c.now() + expire_ms : 0, keep_ttl);
  if (!get) c.reply().ok();
}

void cmd_del(CommandContext& c) {
  long long removed = 0;
  for (std::size_t i = 1; i < c.args.size(); ++i) removed += c.db().erase(c.args[i], c.now()) ? 1 : 0;
  c.reply().integer(removed);
}

void cmd_exists(CommandContext& c) {
  long long found = 0;
  for (std::size_t i = 1; i < c.args.size(); ++i) found += c.db().find(c.args[i], c.now()) != nullptr ? 1 : 0;
  c.reply().integer(found);
}

void increment(CommandContext& c, long long by) {
  Database& db = c.db();
  Value* v = db.find(c.args[1], c.now());
  long long current = 0;
  if (v != nullptr && !parse_int64(v->data, current)) return c.reply().error(kErrNotInteger);
  long long result = 0;
  if (__builtin_add_overflow(current, by, &result)) {
    return c.reply().error("ERR increment or decrement would overflow");
  }
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, result);
  (void)ec;
  std::string_view text(buf, static_cast<std::size_t>(end - buf));
  if (v != nullptr) {
    v->data.assign(text);  // INCR keeps the key's expiry
  } else {
    db.set(c.args[1], text, 0);
  }
  c.reply().integer(result);
}

void cmd_incr(CommandContext& c) { increment(c, 1); }
void cmd_decr(CommandContext& c) { increment(c, -1); }

void cmd_incrby(CommandContext& c) {
  long long by = 0;
  if (!parse_int64(c.args[2], by)) return c.reply().error(kErrNotInteger);
  increment(c, by);
}

void cmd_decrby(CommandContext& c) {
  long long by = 0;
  if (!parse_int64(c.args[2], by) || by == std::numeric_limits<long long>::min()) {
    return c.reply().error(kErrNotInteger);
  }
  increment(c, -by);
}

void cmd_mget(CommandContext& c) {
  c.reply().array(c.args.size() - 1);
  for (std::size_t i = 1; i < c.args.size(); ++i) {
    const Value* v = c.db().find(c.args[i], c.now());
    if (v == nullptr) {
      c.reply().null_bulk();
    } else {
      c.reply().bulk(v->data);
    }
  }
}

void cmd_mset(CommandContext& c) {
  if (c.args.size() % 2 == 0) return reply_wrong_arity(c.reply(), "mset");
  for (std::size_t i = 1; i + 1 < c.args.size(); i += 2) c.db().set(c.args[i], c.args[i + 1], 0);
  c.reply().ok();
}

void reply_ttl(CommandContext& c, bool in_ms) {
  const Value* v = c.db().find(c.args[1], c.now());
  if (v == nullptr) return c.reply().integer(-2);
  if (v->expire_at_ms == 0) return c.reply().integer(-1);
  long long left = v->expire_at_ms - c.now();
  c.reply().integer(in_ms ? left : (left + 500) / 1000);
}

void cmd_ttl(CommandContext& c) { reply_ttl(c, false); }
void cmd_pttl(CommandContext& c) { reply_ttl(c, true); }

void cmd_select(CommandContext& c) {
  long long index = 0;
  if (!parse_int64(c.args[1], index)) return c.reply().error(kErrNotInteger);
  if (index < 0 || index >= kDatabases) return c.reply().error("ERR DB index is out of range");
  c.session().db = static_cast<int>(index);
  c.reply().ok();
}

void cmd_dbsize(CommandContext& c) { c.reply().integer(static_cast<long long>(c.db().size())); }

bool flush_mode_ok(CommandContext& c) {
  if (c.args.size() == 1) return true;
  if (c.args.size() == 2 && (equals_ignore_case(c.args[1], "sync") || equals_ignore_case(c.args[1], "async"))) {
    return true;
  }
  c.reply().error(kErrSyntax);
  return false;
}

void cmd_flushdb(CommandContext& c) {
  if (!flush_mode_ok(c)) return;
  c.db().clear();
  c.reply().ok();
}

void cmd_flushall(CommandContext& c) {
  if (!flush_mode_ok(c)) return;
  c.engine.keyspace().clear();
  c.reply().ok();
}

constexpr CommandSpec kCommands[] = {
    {"get", 2, kCmdNone, cmd_get},
    {"set", -3, kCmdNone, cmd_set},
    {"del", -2, kCmdNone, cmd_del},
    {"exists", -2, kCmdNone, cmd_exists},
    {"incr", 2, kCmdNone, cmd_incr},
    {"decr", 2, kCmdNone, cmd_decr},
    {"incrby", 3, kCmdNone, cmd_incrby},
    {"decrby", 3, kCmdNone, cmd_decrby},
    {"mget", -2, kCmdNone, cmd_mget},
    {"mset", -3, kCmdNone, cmd_mset},
    {"ttl", 2, kCmdNone, cmd_ttl},
    {"pttl", 2, kCmdNone, cmd_pttl},
    {"select", 2, kCmdNone, cmd_select},
    {"dbsize", 1, kCmdNone, cmd_dbsize},
    {"flushdb", -1, kCmdNone, cmd_flushdb},
    {"flushall", -1, kCmdNone, cmd_flushall},
};

}  // namespace

std::span<const CommandSpec> key_commands() { return kCommands; }

}  // namespace heavy
