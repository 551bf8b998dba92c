// MULTI EXEC DISCARD. Queuing happens in Engine::execute (every command but these is queued
// while the session is in MULTI); EXEC replays the queue through the same handlers.
#include <string>
#include <vector>

#include "heavy/engine.hpp"

namespace heavy {

namespace {

void cmd_multi(CommandContext& c) {
  Session& s = c.session();
  if (s.in_multi) return c.reply().error("ERR MULTI calls can not be nested");
  s.discard_multi();
  s.in_multi = true;
  c.reply().ok();
}

void cmd_exec(CommandContext& c) {
  Session& s = c.session();
  if (!s.in_multi) return c.reply().error("ERR EXEC without MULTI");
  if (s.multi_failed) {
    s.discard_multi();
    return c.reply().error("EXECABORT Transaction discarded because of previous errors.");
  }
  auto queue = std::move(s.multi_queue);
  s.discard_multi();
  c.reply().array(queue.size());
  std::vector<std::string_view> args;
  for (const std::vector<std::string>& command : queue) {
    args.assign(command.begin(), command.end());
    // Checked again: the queue may come from a session blob, and a handler trusts its arity.
    const CommandSpec* spec = find_command(args[0]);
    if (spec == nullptr || !arity_ok(*spec, args.size()) || (spec->flags & (kCmdNoMulti | kCmdNotQueued)) != 0) {
      c.reply().error("ERR command not allowed in transaction");
      continue;
    }
    run_command(c.engine, c.client, *spec, args);
  }
}

void cmd_discard(CommandContext& c) {
  Session& s = c.session();
  if (!s.in_multi) return c.reply().error("ERR DISCARD without MULTI");
  s.discard_multi();
  c.reply().ok();
}

constexpr CommandSpec kCommands[] = {
    {"multi", 1, kCmdNotQueued, cmd_multi},
    {"exec", 1, kCmdNotQueued, cmd_exec},
    {"discard", 1, kCmdNotQueued, cmd_discard},
};

}  // namespace

std::span<const CommandSpec> transaction_commands() { return kCommands; }

}  // namespace heavy
