// Connection and server commands: PING ECHO QUIT CLIENT INFO COMMAND CONFIG — including the
// graceful answers redis-cli and redis-benchmark expect when they start (COMMAND DOCS,
// CONFIG GET save/appendonly). HELLO is deliberately unknown: clients then fall back to RESP2.
#include <fnmatch.h>

#include <string>

#include "heavy/engine.hpp"
#include "heavy/info.hpp"
#include "heavy/resp_parser.hpp"

namespace heavy {

namespace {

void cmd_ping(CommandContext& c) {
  if (c.args.size() > 2) return reply_wrong_arity(c.reply(), "ping");
  if (c.session().subscribed()) {
    // In subscribed mode redis answers with a push-style array.
    c.reply().array(2);
    c.reply().bulk("pong");
    c.reply().bulk(c.args.size() == 2 ? c.args[1] : std::string_view());
    return;
  }
  if (c.args.size() == 2) return c.reply().bulk(c.args[1]);
  c.reply().raw("+PONG\r\n");
}

void cmd_echo(CommandContext& c) { c.reply().bulk(c.args[1]); }

void cmd_quit(CommandContext& c) {
  c.reply().ok();
  c.client.close_after_reply = true;
}

// Redis refuses names with spaces or control characters, so CLIENT LIST stays parseable.
bool valid_client_name(std::string_view name) {
  for (char ch : name) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

void cmd_client(CommandContext& c) {
  std::string_view sub = c.args[1];
  if (equals_ignore_case(sub, "id") && c.args.size() == 2) {
    c.reply().integer(static_cast<long long>(c.session().id));
  } else if (equals_ignore_case(sub, "getname") && c.args.size() == 2) {
    if (c.session().name.empty()) {
      c.reply().null_bulk();
    } else {
      c.reply().bulk(c.session().name);
    }
  } else if (equals_ignore_case(sub, "setname") && c.args.size() == 3) {
    if (!valid_client_name(c.args[2])) {
      return c.reply().error("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    c.session().name.assign(c.args[2]);
    c.reply().ok();
  } else if (equals_ignore_case(sub, "setinfo") && c.args.size() == 4) {
    c.reply().ok();  // lib-name / lib-ver from newer client libraries: accepted, not kept
  } else if (equals_ignore_case(sub, "help") && c.args.size() == 2) {
    const std::string_view lines[] = {
        "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
        "ID", "    Return the ID of the current connection.",
        "GETNAME", "    Return the name of the current connection.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
    };
    c.reply().array(std::size(lines));
    for (std::string_view l : lines) c.reply().simple(l);
  } else if (equals_ignore_case(sub, "id") || equals_ignore_case(sub, "getname") ||
             equals_ignore_case(sub, "setname") || equals_ignore_case(sub, "setinfo")) {
    std::string name = "client|";
    for (char ch : sub) name.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch);
    reply_wrong_arity(c.reply(), name);
  } else {
    reply_unknown_subcommand(c.reply(), sub, "client");
  }
}

void cmd_info(CommandContext& c) { c.reply().bulk(build_info(c.engine, c.args.subspan(1))); }

// One entry in the pre-7 COMMAND format: name, arity, flags, first key, last key, step.
void reply_command_entry(ReplyBuffer& reply, const CommandSpec& spec) {
  reply.array(6);
  reply.bulk(spec.name);
  reply.integer(spec.arity);
  reply.array(0);
  reply.integer(0);
  reply.integer(0);
  reply.integer(0);
}

template <class F>
void for_each_command(F&& f) {
  for (auto table : {key_commands(), server_commands(), pubsub_commands(), transaction_commands()}) {
    for (const CommandSpec& spec : table) f(spec);
  }
}

void cmd_command(CommandContext& c) {
  if (c.args.size() == 1) {
    c.reply().array(command_count());
    for_each_command([&](const CommandSpec& spec) { reply_command_entry(c.reply(), spec); });
    return;
  }
  std::string_view sub = c.args[1];
  if (equals_ignore_case(sub, "count") && c.args.size() == 2) {
    c.reply().integer(static_cast<long long>(command_count()));
  } else if (equals_ignore_case(sub, "docs")) {
    c.reply().array(0);  // redis-cli asks at start-up for its hints; none is a valid answer
  } else if (equals_ignore_case(sub, "info")) {
    c.reply().array(c.args.size() - 2);
    for (std::size_t i = 2; i < c.args.size(); ++i) {
      const CommandSpec* spec = find_command(c.args[i]);
      if (spec == nullptr) {
        c.reply().null_array();
      } else {
        reply_command_entry(c.reply(), *spec);
      }
    }
  } else if (equals_ignore_case(sub, "list") && c.args.size() == 2) {
    c.reply().array(command_count());
    for_each_command([&](const CommandSpec& spec) { c.reply().bulk(spec.name); });
  } else {
    reply_unknown_subcommand(c.reply(), sub, "command");
  }
}

struct ConfigParameter {
  std::string_view name;
  std::string value;
};

// What CONFIG GET reports: enough for tools that ask at start-up (redis-benchmark asks for
// save and appendonly) and for people who want the limits.
std::vector<ConfigParameter> config_parameters(const Engine& e) {
  const RespLimits limits;
  return {
      {"save", ""},
      {"appendonly", "no"},
      {"databases", std::to_string(kDatabases)},
      {"maxmemory", "0"},
      {"maxmemory-policy", "noeviction"},
      {"timeout", std::to_string(e.identity().client_limits.timeout_seconds)},
      {"port", std::to_string(e.identity().tcp_port)},
      {"proto-max-bulk-len", std::to_string(limits.max_bulk)},
      {"client-query-buffer-limit", std::to_string(e.identity().client_limits.query_buffer_bytes)},
      {"client-output-buffer-limit", format_output_limits(e.identity().client_limits)},
  };
}

void cmd_config(CommandContext& c) {
  std::string_view sub = c.args[1];
  if (equals_ignore_case(sub, "get") && c.args.size() >= 3) {
    const auto params = config_parameters(c.engine);
    std::vector<const ConfigParameter*> matched;
    for (const ConfigParameter& p : params) {
      for (std::size_t i = 2; i < c.args.size(); ++i) {
        const std::string pattern(c.args[i]);
        const std::string name(p.name);
        if (::fnmatch(pattern.c_str(), name.c_str(), FNM_CASEFOLD) == 0) {
          matched.push_back(&p);
          break;
        }
      }
    }
    c.reply().array(matched.size() * 2);
    for (const ConfigParameter* p : matched) {
      c.reply().bulk(p->name);
      c.reply().bulk(p->value);
    }
  } else if (equals_ignore_case(sub, "set") && c.args.size() >= 4) {
    std::string text = "ERR Unknown option or number of arguments for CONFIG SET - '";
    text.append(c.args[2].substr(0, 128));
    text.push_back('\'');
    c.reply().error(text);
  } else if (equals_ignore_case(sub, "resetstat") && c.args.size() == 2) {
    c.reply().ok();
  } else if (equals_ignore_case(sub, "get") || equals_ignore_case(sub, "set") ||
             equals_ignore_case(sub, "resetstat")) {
    std::string name = "config|";
    for (char ch : sub) name.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch);
    reply_wrong_arity(c.reply(), name);
  } else {
    reply_unknown_subcommand(c.reply(), sub, "config");
  }
}

constexpr CommandSpec kCommands[] = {
    {"ping", -1, kCmdAllowedWhileSubscribed, cmd_ping},
    {"echo", 2, kCmdNone, cmd_echo},
    {"quit", -1, kCmdAllowedWhileSubscribed | kCmdNotQueued, cmd_quit},
    {"client", -2, kCmdNone, cmd_client},
    {"info", -1, kCmdNone, cmd_info},
    {"command", -1, kCmdNone, cmd_command},
    {"config", -2, kCmdNone, cmd_config},
};

}  // namespace

std::span<const CommandSpec> server_commands() { return kCommands; }

}  // namespace heavy
