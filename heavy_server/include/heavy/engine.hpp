// Engine: executes commands. It knows the keyspace, the channels and the counters, and for
// each call the client that sent the command — never sockets or the event loop, so every
// command's semantics can be tested with plain function calls.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "heavy/keyspace.hpp"
#include "heavy/pubsub.hpp"
#include "heavy/reply_buffer.hpp"
#include "heavy/session.hpp"
#include "heavy/stats.hpp"

namespace heavy {

using Args = std::span<const std::string_view>;

// What a command sees of the connection that sent it.
struct Client {
  Session& session;
  ReplyBuffer& reply;
  PubSubSink* sink = nullptr;      // this client as a receiver of PUBLISH (null: cannot subscribe)
  bool close_after_reply = false;  // set by QUIT
};

// Limits on what one session may queue in MULTI (it may have to fit in a session blob).
inline constexpr std::size_t kMaxQueuedCommands = 100000;
inline constexpr std::size_t kMaxQueuedBytes = 16 * 1024 * 1024;

class Engine {
 public:
  Engine(Keyspace& keyspace, PubSub& pubsub, ServerStats& stats, const ServerIdentity& identity)
      : keyspace_(keyspace), pubsub_(pubsub), stats_(stats), identity_(identity) {}

  // Executes one request (args non-empty) and appends its reply to client.reply.
  void execute(Client& client, Args args);

  // The time commands see (monotonic ms). The server sets it from the loop's cached clock
  // before each batch of requests; tests set what they like.
  void set_now_ms(std::int64_t now_ms) noexcept { now_ms_ = now_ms; }
  [[nodiscard]] std::int64_t now_ms() const noexcept { return now_ms_; }

  [[nodiscard]] Keyspace& keyspace() noexcept { return keyspace_; }
  [[nodiscard]] PubSub& pubsub() noexcept { return pubsub_; }
  [[nodiscard]] ServerStats& stats() noexcept { return stats_; }
  [[nodiscard]] const ServerIdentity& identity() const noexcept { return identity_; }

 private:
  Keyspace& keyspace_;
  PubSub& pubsub_;
  ServerStats& stats_;
  const ServerIdentity& identity_;
  std::int64_t now_ms_ = 0;
};

// --- For the command implementations (commands_*.cpp) ---

struct CommandContext {
  Engine& engine;
  Client& client;
  Args args;  // args[0] is the command name as sent

  [[nodiscard]] Session& session() noexcept { return client.session; }
  [[nodiscard]] ReplyBuffer& reply() noexcept { return client.reply; }
  [[nodiscard]] Database& db() noexcept { return engine.keyspace().db(client.session.db); }
  [[nodiscard]] std::int64_t now() const noexcept { return engine.now_ms(); }
};

using CommandHandler = void (*)(CommandContext&);

enum CommandFlags : unsigned {
  kCmdNone = 0,
  kCmdAllowedWhileSubscribed = 1u << 0,  // PING, QUIT, RESET, (P)(UN)SUBSCRIBE
  kCmdNotQueued = 1u << 1,               // runs at once inside MULTI: MULTI, EXEC, DISCARD, QUIT
  kCmdNoMulti = 1u << 2,                 // refused inside MULTI (none now: redis 7 queues even SUBSCRIBE)
};

struct CommandSpec {
  std::string_view name;  // lower case
  int arity;              // redis convention: N exactly N args (name included), -N at least N
  unsigned flags;
  CommandHandler handler;
};

// The command tables of each area, and lookup over all of them.
std::span<const CommandSpec> key_commands();
std::span<const CommandSpec> server_commands();
std::span<const CommandSpec> pubsub_commands();
std::span<const CommandSpec> transaction_commands();
// The command named `name` (any case), or nullptr.
const CommandSpec* find_command(std::string_view name);
std::size_t command_count();
// Whether `argc` arguments (the name included) suit `spec`.
bool arity_ok(const CommandSpec& spec, std::size_t argc) noexcept;

// Shared reply texts and helpers.
void reply_wrong_arity(ReplyBuffer& reply, std::string_view command);
void reply_unknown_subcommand(ReplyBuffer& reply, std::string_view sub, std::string_view command);
inline constexpr std::string_view kErrNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kErrSyntax = "ERR syntax error";
// Strict redis-style integer parse of a whole argument.
bool parse_int64(std::string_view text, long long& value);
bool equals_ignore_case(std::string_view a, std::string_view b);
// Executes a command already found and arity-checked (EXEC replays its queue through this).
void run_command(Engine& engine, Client& client, const CommandSpec& spec, Args args);

}  // namespace heavy
