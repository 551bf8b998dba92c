#include "heavy/engine.hpp"

#include <algorithm>
#include <charconv>
#include <string>
#include <unordered_map>

namespace heavy {

namespace {

constexpr std::size_t kMaxCommandName = 32;

using CommandIndex = std::unordered_map<std::string_view, const CommandSpec*>;

const CommandIndex& command_index() {
  static const CommandIndex index = [] {
    CommandIndex idx;
    for (auto table : {key_commands(), server_commands(), pubsub_commands(), transaction_commands()}) {
      for (const CommandSpec& spec : table) idx.emplace(spec.name, &spec);
    }
    return idx;
  }();
  return index;
}

// redis' wording, so clients and people see what they know:
// ERR unknown command 'foo', with args beginning with: 'a' 'b'
void reply_unknown_command(ReplyBuffer& reply, Args args) {
  std::string text = "ERR unknown command '";
  text.append(args[0].substr(0, 128));
  text.append("', with args beginning with: ");
  std::size_t listed = 0;
  for (std::size_t i = 1; i < args.size() && listed < 128; ++i) {
    std::string_view a = args[i].substr(0, 128 - listed);
    text.push_back('\'');
    text.append(a);
    text.append("' ");
    listed += a.size() + 3;
  }
  reply.error(text);
}

}  // namespace

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
         });
}

bool parse_int64(std::string_view text, long long& value) {
  if (text.empty() || text.size() > 20) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool arity_ok(const CommandSpec& spec, std::size_t argc) noexcept {
  const auto n = static_cast<long long>(argc);
  return spec.arity >= 0 ? n == spec.arity : n >= -spec.arity;
}

const CommandSpec* find_command(std::string_view name) {
  if (name.size() > kMaxCommandName) return nullptr;
  char lower[kMaxCommandName];
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  const CommandIndex& index = command_index();
  auto it = index.find(std::string_view(lower, name.size()));
  return it == index.end() ? nullptr : it->second;
}

std::size_t command_count() { return command_index().size(); }

void reply_wrong_arity(ReplyBuffer& reply, std::string_view command) {
  std::string text = "ERR wrong number of arguments for '";
  text.append(command);
  text.append("' command");
  reply.error(text);
}

void reply_unknown_subcommand(ReplyBuffer& reply, std::string_view sub, std::string_view command) {
  std::string text = "ERR unknown subcommand '";
  text.append(sub.substr(0, 128));
  text.append("'. Try ");
  for (char c : command) text.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
  text.append(" HELP.");
  reply.error(text);
}

void run_command(Engine& engine, Client& client, const CommandSpec& spec, Args args) {
  CommandContext ctx{engine, client, args};
  spec.handler(ctx);
}

void Engine::execute(Client& client, Args args) {
  ++stats_.commands_processed;
  Session& session = client.session;
  ++session.counters.commands;

  const CommandSpec* spec = find_command(args[0]);
  if (spec == nullptr || !arity_ok(*spec, args.size())) {
    if (session.in_multi) session.multi_failed = true;  // EXEC will answer EXECABORT
    if (spec == nullptr) {
      reply_unknown_command(client.reply, args);
    } else {
      reply_wrong_arity(client.reply, spec->name);
    }
    return;
  }
  if (session.subscribed() && (spec->flags & kCmdAllowedWhileSubscribed) == 0) {
    std::string text = "ERR Can't execute '";
    text.append(spec->name);
    text.append("': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
    client.reply.error(text);
    return;
  }
  if (session.in_multi && (spec->flags & kCmdNotQueued) == 0) {
    if ((spec->flags & kCmdNoMulti) != 0) {
      session.multi_failed = true;
      client.reply.error("ERR Command not allowed inside a transaction");
      return;
    }
    std::size_t bytes = 0;
    for (std::string_view a : args) bytes += a.size();
    if (session.multi_queue.size() >= kMaxQueuedCommands || session.multi_queue_bytes + bytes > kMaxQueuedBytes) {
      session.multi_failed = true;
      client.reply.error("ERR MULTI queue is full");
      return;
    }
    session.multi_queue.emplace_back(args.begin(), args.end());
    session.multi_queue_bytes += bytes;
    client.reply.simple("QUEUED");
    return;
  }
  run_command(*this, client, *spec, args);
}

}  // namespace heavy
