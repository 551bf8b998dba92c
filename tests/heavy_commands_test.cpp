// Command semantics, driven through heavy::Engine with plain calls: the replies, byte for
// byte as RESP2, and the session and keyspace they leave behind.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "heavy/client_limits.hpp"
#include "heavy/engine.hpp"
#include "heavy/glob_match.hpp"
#include "heavy/info.hpp"

using namespace heavy;

namespace {

struct TestClient final : PubSubSink {
  Session session;
  ReplyBuffer reply;
  Client client{session, reply, this};
  std::vector<std::pair<std::string, std::string>> messages;

  void deliver(std::string_view channel, std::string_view message) override {
    messages.emplace_back(channel, message);
  }
  void deliver_pattern(std::string_view pattern, std::string_view channel, std::string_view message) override {
    messages.emplace_back(std::string(pattern) + " " + std::string(channel), message);
  }
};

struct Fixture {
  Keyspace keyspace;
  PubSub pubsub;
  ServerStats stats;
  ServerIdentity identity;
  Engine engine{keyspace, pubsub, stats, identity};
  TestClient a, b;

  Fixture() {
    a.session.id = 1;
    b.session.id = 2;
    engine.set_now_ms(1'000'000);
  }

  std::string run(TestClient& c, std::vector<std::string_view> args) {
    c.reply.clear();
    engine.execute(c.client, args);
    return std::string(c.reply.view());
  }
  std::string run(std::vector<std::string_view> args) { return run(a, std::move(args)); }
};

constexpr const char* OK = "+OK\r\n";
constexpr const char* NIL = "$-1\r\n";

}  // namespace

TEST_CASE_METHOD(Fixture, "PING and ECHO", "[heavy][commands]") {
  CHECK(run({"PING"}) == "+PONG\r\n");
  CHECK(run({"ping", "hi"}) == "$2\r\nhi\r\n");
  CHECK(run({"PING", "a", "b"}) == "-ERR wrong number of arguments for 'ping' command\r\n");
  CHECK(run({"ECHO", "hello"}) == "$5\r\nhello\r\n");
  CHECK(run({"ECHO"}) == "-ERR wrong number of arguments for 'echo' command\r\n");
}

TEST_CASE_METHOD(Fixture, "command names are case-insensitive", "[heavy][commands]") {
  CHECK(run({"sEt", "k", "v"}) == OK);
  CHECK(run({"get", "k"}) == "$1\r\nv\r\n");
  CHECK(run({"GET", "k"}) == "$1\r\nv\r\n");
}

TEST_CASE_METHOD(Fixture, "unknown commands are answered in redis' words", "[heavy][commands]") {
  CHECK(run({"FOO"}) == "-ERR unknown command 'FOO', with args beginning with: \r\n");
  CHECK(run({"foo", "a", "b"}) == "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  CHECK(run({"HELLO", "3"}) == "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n");
  CHECK(run({"x\r\ny"}) == "-ERR unknown command 'x  y', with args beginning with: \r\n");
  const std::string long_arg(300, 'z');
  const std::string reply = run({"nope", long_arg, "more"});
  CHECK(reply.size() < 300);  // arguments are cut at 128 characters in all
}

TEST_CASE_METHOD(Fixture, "SET and GET, with NX, XX, GET and KEEPTTL", "[heavy][commands]") {
  CHECK(run({"GET", "k"}) == NIL);
  CHECK(run({"SET", "k", "v1"}) == OK);
  CHECK(run({"GET", "k"}) == "$2\r\nv1\r\n");
  CHECK(run({"SET", "k", "v2", "NX"}) == NIL);
  CHECK(run({"SET", "new", "x", "XX"}) == NIL);
  CHECK(run({"GET", "new"}) == NIL);
  CHECK(run({"SET", "k", "v3", "XX"}) == OK);
  CHECK(run({"SET", "k", "v4", "GET"}) == "$2\r\nv3\r\n");
  CHECK(run({"SET", "absent", "x", "GET"}) == NIL);
  CHECK(run({"SET", "k", "v5", "EX", "100"}) == OK);
  CHECK(run({"SET", "k", "v6", "KEEPTTL"}) == OK);
  CHECK(run({"TTL", "k"}) == ":100\r\n");
  CHECK(run({"SET", "k", "v7"}) == OK);
  CHECK(run({"TTL", "k"}) == ":-1\r\n");
}

TEST_CASE_METHOD(Fixture, "SET refuses bad options", "[heavy][commands]") {
  CHECK(run({"SET", "k"}) == "-ERR wrong number of arguments for 'set' command\r\n");
  CHECK(run({"SET", "k", "v", "NX", "XX"}) == "-ERR syntax error\r\n");
  CHECK(run({"SET", "k", "v", "EX", "10", "PX", "100"}) == "-ERR syntax error\r\n");
  CHECK(run({"SET", "k", "v", "EX"}) == "-ERR syntax error\r\n");
  CHECK(run({"SET", "k", "v", "BOGUS"}) == "-ERR syntax error\r\n");
  CHECK(run({"SET", "k", "v", "EX", "ten"}) == "-ERR value is not an integer or out of range\r\n");
  CHECK(run({"SET", "k", "v", "EX", "0"}) == "-ERR invalid expire time in 'set' command\r\n");
  CHECK(run({"SET", "k", "v", "PX", "-5"}) == "-ERR invalid expire time in 'set' command\r\n");
  CHECK(run({"GET", "k"}) == NIL);
}

TEST_CASE_METHOD(Fixture, "keys with EX or PX expire when their time has passed", "[heavy][commands]") {
  CHECK(run({"SET", "s", "v", "EX", "2"}) == OK);
  CHECK(run({"SET", "m", "v", "PX", "1500"}) == OK);
  CHECK(run({"PTTL", "m"}) == ":1500\r\n");
  engine.set_now_ms(engine.now_ms() + 1499);
  CHECK(run({"GET", "m"}) == "$1\r\nv\r\n");
  engine.set_now_ms(engine.now_ms() + 1);
  CHECK(run({"GET", "m"}) == NIL);
  CHECK(run({"EXISTS", "s"}) == ":1\r\n");
  CHECK(keyspace.db(0).volatile_count() == 1);
  // The periodic sweep removes an expired key nobody asks for.
  engine.set_now_ms(engine.now_ms() + 1000);
  for (int i = 0; i < 100 && keyspace.db(0).size() > 0; ++i) (void)keyspace.sweep(engine.now_ms(), 64);
  CHECK(keyspace.db(0).size() == 0);
  CHECK(keyspace.db(0).volatile_count() == 0);
  CHECK(run({"TTL", "s"}) == ":-2\r\n");
}

TEST_CASE_METHOD(Fixture, "DEL and EXISTS count keys", "[heavy][commands]") {
  run({"SET", "a", "1"});
  run({"SET", "b", "2"});
  CHECK(run({"EXISTS", "a", "b", "c", "a"}) == ":3\r\n");
  CHECK(run({"DEL", "a", "c"}) == ":1\r\n");
  CHECK(run({"EXISTS", "a"}) == ":0\r\n");
  CHECK(run({"DEL"}) == "-ERR wrong number of arguments for 'del' command\r\n");
}

TEST_CASE_METHOD(Fixture, "INCR family: integers only, no overflow, expiry kept", "[heavy][commands]") {
  CHECK(run({"INCR", "n"}) == ":1\r\n");
  CHECK(run({"INCR", "n"}) == ":2\r\n");
  CHECK(run({"INCRBY", "n", "40"}) == ":42\r\n");
  CHECK(run({"DECR", "n"}) == ":41\r\n");
  CHECK(run({"DECRBY", "n", "50"}) == ":-9\r\n");
  CHECK(run({"GET", "n"}) == "$2\r\n-9\r\n");
  run({"SET", "s", "abc"});
  CHECK(run({"INCR", "s"}) == "-ERR value is not an integer or out of range\r\n");
  run({"SET", "s", " 1"});
  CHECK(run({"INCR", "s"}) == "-ERR value is not an integer or out of range\r\n");
  run({"SET", "big", "9223372036854775807"});
  CHECK(run({"INCR", "big"}) == "-ERR increment or decrement would overflow\r\n");
  CHECK(run({"INCRBY", "n", "x"}) == "-ERR value is not an integer or out of range\r\n");
  run({"SET", "t", "5", "EX", "100"});
  CHECK(run({"INCR", "t"}) == ":6\r\n");
  CHECK(run({"TTL", "t"}) == ":100\r\n");
}

TEST_CASE_METHOD(Fixture, "SELECT switches among 16 separate databases", "[heavy][commands]") {
  run({"SET", "k", "zero"});
  CHECK(run({"SELECT", "3"}) == OK);
  CHECK(a.session.db == 3);
  CHECK(run({"GET", "k"}) == NIL);
  run({"SET", "k", "three"});
  CHECK(run(b, {"GET", "k"}) == "$4\r\nzero\r\n");  // b is still in db 0
  CHECK(run({"DBSIZE"}) == ":1\r\n");
  CHECK(run({"SELECT", "16"}) == "-ERR DB index is out of range\r\n");
  CHECK(run({"SELECT", "-1"}) == "-ERR DB index is out of range\r\n");
  CHECK(run({"SELECT", "x"}) == "-ERR value is not an integer or out of range\r\n");
  CHECK(a.session.db == 3);
  CHECK(run({"FLUSHDB"}) == OK);
  CHECK(run(b, {"GET", "k"}) == "$4\r\nzero\r\n");
  CHECK(run({"FLUSHALL"}) == OK);
  CHECK(run(b, {"GET", "k"}) == NIL);
}

TEST_CASE_METHOD(Fixture, "CLIENT ID, SETNAME and GETNAME", "[heavy][commands]") {
  CHECK(run({"CLIENT", "ID"}) == ":1\r\n");
  CHECK(run(b, {"client", "id"}) == ":2\r\n");
  CHECK(run({"CLIENT", "GETNAME"}) == NIL);
  CHECK(run({"CLIENT", "SETNAME", "alice"}) == OK);
  CHECK(run({"CLIENT", "GETNAME"}) == "$5\r\nalice\r\n");
  CHECK(run({"CLIENT", "SETNAME", "has space"}) ==
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  CHECK(a.session.name == "alice");
  CHECK(run({"CLIENT", "SETNAME", ""}) == OK);
  CHECK(run({"CLIENT", "GETNAME"}) == NIL);
  CHECK(run({"CLIENT", "SETNAME"}) == "-ERR wrong number of arguments for 'client|setname' command\r\n");
  CHECK(run({"CLIENT", "KILL"}) == "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n");
  CHECK(run({"CLIENT", "SETINFO", "lib-name", "x"}) == OK);
}

TEST_CASE_METHOD(Fixture, "MULTI queues, EXEC runs the queue, DISCARD drops it", "[heavy][commands]") {
  CHECK(run({"MULTI"}) == OK);
  CHECK(run({"SET", "k", "1"}) == "+QUEUED\r\n");
  CHECK(run({"INCR", "k"}) == "+QUEUED\r\n");
  CHECK(run({"GET", "k"}) == "+QUEUED\r\n");
  CHECK(run(b, {"GET", "k"}) == NIL);  // nothing ran yet
  CHECK(run({"EXEC"}) == "*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n");
  CHECK_FALSE(a.session.in_multi);

  CHECK(run({"MULTI"}) == OK);
  CHECK(run({"MULTI"}) == "-ERR MULTI calls can not be nested\r\n");
  CHECK(run({"SET", "k", "9"}) == "+QUEUED\r\n");
  CHECK(run({"DISCARD"}) == OK);
  CHECK(run({"GET", "k"}) == "$1\r\n2\r\n");
  CHECK(run({"EXEC"}) == "-ERR EXEC without MULTI\r\n");
  CHECK(run({"DISCARD"}) == "-ERR DISCARD without MULTI\r\n");

  // A refused command inside MULTI aborts the whole transaction.
  CHECK(run({"MULTI"}) == OK);
  CHECK(run({"SET", "k", "10"}) == "+QUEUED\r\n");
  CHECK(run({"NOSUCH"}).starts_with("-ERR unknown command"));
  CHECK(run({"GET"}) == "-ERR wrong number of arguments for 'get' command\r\n");
  CHECK(run({"EXEC"}) == "-EXECABORT Transaction discarded because of previous errors.\r\n");
  CHECK(run({"GET", "k"}) == "$1\r\n2\r\n");

  // Errors at run time are part of EXEC's answer; the rest still runs.
  run({"SET", "s", "text"});
  CHECK(run({"MULTI"}) == OK);
  run({"INCR", "s"});
  run({"SET", "after", "yes"});
  CHECK(run({"EXEC"}) == "*2\r\n-ERR value is not an integer or out of range\r\n+OK\r\n");
  CHECK(run({"GET", "after"}) == "$3\r\nyes\r\n");

  CHECK(run({"MULTI"}) == OK);
  CHECK(run({"SUBSCRIBE", "c"}) == "+QUEUED\r\n");  // as redis 7.0: queued like any command
  CHECK(run({"DISCARD"}) == OK);
}

TEST_CASE_METHOD(Fixture, "SUBSCRIBE, PUBLISH and UNSUBSCRIBE with RESP2 replies", "[heavy][commands]") {
  CHECK(run({"SUBSCRIBE", "news", "sport"}) ==
        "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n");
  CHECK(stats.subscriber_connections == 1);
  CHECK(run(b, {"PUBLISH", "news", "hello"}) == ":1\r\n");
  CHECK(run(b, {"PUBLISH", "weather", "rain"}) == ":0\r\n");
  CHECK(a.messages == std::vector<std::pair<std::string, std::string>>{{"news", "hello"}});

  // Subscribed: only the pubsub commands, PING and QUIT.
  CHECK(run({"GET", "k"}) ==
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
        "this context\r\n");
  CHECK(run({"PING"}) == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");

  CHECK(run({"UNSUBSCRIBE", "news"}) == "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  CHECK(run(b, {"PUBLISH", "news", "again"}) == ":0\r\n");
  CHECK(run({"UNSUBSCRIBE"}) == "*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n:0\r\n");
  CHECK(stats.subscriber_connections == 0);
  CHECK(run({"UNSUBSCRIBE"}) == "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
  CHECK(pubsub.channel_count() == 0);
  CHECK(run({"GET", "k"}) == NIL);  // back to normal
}

// The replies below are redis 7.0.15's, byte for byte (captured with the same commands).
TEST_CASE_METHOD(Fixture, "PSUBSCRIBE, PUNSUBSCRIBE and their counts as redis 7 answers them", "[heavy][commands]") {
  CHECK(run({"PSUBSCRIBE", "a*", "b?"}) ==
        "*3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:1\r\n*3\r\n$10\r\npsubscribe\r\n$2\r\nb?\r\n:2\r\n");
  CHECK(stats.subscriber_connections == 1);
  CHECK(run({"SUBSCRIBE", "c"}) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:3\r\n");  // channels + patterns
  CHECK(run({"GET", "k"}).starts_with("-ERR Can't execute 'get'"));
  // A channel subscriber and a matching pattern both count, channel first.
  CHECK(run(b, {"PUBLISH", "c", "x"}) == ":1\r\n");
  CHECK(run(b, {"PUBLISH", "ab", "y"}) == ":1\r\n");
  CHECK(run(b, {"PUBLISH", "bb", "z"}) == ":1\r\n");
  CHECK(run(b, {"PUBLISH", "bbb", "no"}) == ":0\r\n");
  CHECK(a.messages == std::vector<std::pair<std::string, std::string>>{{"c", "x"}, {"a* ab", "y"}, {"b? bb", "z"}});
  CHECK(run({"PUNSUBSCRIBE"}) == "*3\r\n$12\r\npunsubscribe\r\n$2\r\na*\r\n:2\r\n"
                                 "*3\r\n$12\r\npunsubscribe\r\n$2\r\nb?\r\n:1\r\n");
  CHECK(run({"PUNSUBSCRIBE"}) == "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:1\r\n");
  CHECK(run({"UNSUBSCRIBE"}) == "*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n");
  CHECK(stats.subscriber_connections == 0);
  CHECK(run({"PUNSUBSCRIBE", "x", "y"}) ==
        "*3\r\n$12\r\npunsubscribe\r\n$1\r\nx\r\n:0\r\n*3\r\n$12\r\npunsubscribe\r\n$1\r\ny\r\n:0\r\n");
  CHECK(run({"PUNSUBSCRIBE"}) == "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");
  CHECK(run({"PSUBSCRIBE"}) == "-ERR wrong number of arguments for 'psubscribe' command\r\n");
  CHECK(pubsub.pattern_count() == 0);
  // As in redis 7.0, MULTI queues it.
  CHECK(run({"MULTI"}) == OK);
  CHECK(run({"PSUBSCRIBE", "z"}) == "+QUEUED\r\n");
  CHECK(run({"EXEC"}) == "*1\r\n*3\r\n$10\r\npsubscribe\r\n$1\r\nz\r\n:1\r\n");
  CHECK(run({"PSUBSCRIBE", "z"}) == "*3\r\n$10\r\npsubscribe\r\n$1\r\nz\r\n:1\r\n");  // already: same count
}

TEST_CASE_METHOD(Fixture, "RESET: out of MULTI and every subscription, db 0, no name, +RESET", "[heavy][commands]") {
  CHECK(run({"CLIENT", "SETNAME", "bob"}) == OK);
  CHECK(run({"SELECT", "2"}) == OK);
  CHECK(run({"MULTI"}) == OK);
  CHECK(run({"RESET"}) == "+RESET\r\n");  // not queued
  CHECK(run({"EXEC"}) == "-ERR EXEC without MULTI\r\n");
  CHECK(run({"CLIENT", "GETNAME"}) == NIL);
  CHECK(a.session.db == 0);
  CHECK(run({"SUBSCRIBE", "q"}) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:1\r\n");
  CHECK(run({"PSUBSCRIBE", "x*"}) == "*3\r\n$10\r\npsubscribe\r\n$2\r\nx*\r\n:2\r\n");
  CHECK(run({"RESET"}) == "+RESET\r\n");  // allowed while subscribed, unsubscribes silently
  CHECK(stats.subscriber_connections == 0);
  CHECK(pubsub.channel_count() == 0);
  CHECK(pubsub.pattern_count() == 0);
  CHECK(run({"PING"}) == "+PONG\r\n");
  CHECK(run({"RESET", "x"}) == "-ERR wrong number of arguments for 'reset' command\r\n");
}

TEST_CASE_METHOD(Fixture, "CONFIG GET shows the client limits with redis' names and formats", "[heavy][commands]") {
  identity.client_limits.timeout_seconds = 30;
  identity.client_limits.query_buffer_bytes = 1024 * 1024;
  REQUIRE(apply_output_limit("pubsub 1mb 512kb 5", identity.client_limits).empty());
  CHECK(run({"CONFIG", "GET", "timeout"}) == "*2\r\n$7\r\ntimeout\r\n$2\r\n30\r\n");
  CHECK(run({"CONFIG", "GET", "client-query-buffer-limit"}) ==
        "*2\r\n$25\r\nclient-query-buffer-limit\r\n$7\r\n1048576\r\n");
  CHECK(run({"CONFIG", "GET", "client-output-buffer-limit"}) ==
        "*2\r\n$26\r\nclient-output-buffer-limit\r\n$64\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 "
        "524288 5\r\n");
  // The defaults print as redis 7's do.
  CHECK(format_output_limits(ClientLimits{}) == "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
}

TEST_CASE("client limits parse as redis reads them", "[heavy][commands]") {
  CHECK(parse_memory("1gb") == 1024ull * 1024 * 1024);
  CHECK(parse_memory("1g") == 1000ull * 1000 * 1000);
  CHECK(parse_memory("64MB") == 64ull * 1024 * 1024);
  CHECK(parse_memory("512kb") == 512u * 1024);
  CHECK(parse_memory("7") == 7u);
  CHECK_FALSE(parse_memory("").has_value());
  CHECK_FALSE(parse_memory("mb").has_value());
  CHECK_FALSE(parse_memory("1tb").has_value());
  CHECK_FALSE(parse_memory("99999999999999999999gb").has_value());
  ClientLimits l;
  CHECK(apply_output_limit("normal 1mb 0 0", l).empty());
  CHECK(l.normal == OutputBufferLimit{1024 * 1024, 0, 0});
  CHECK_FALSE(apply_output_limit("replica 1mb 0 0", l).empty());
  CHECK_FALSE(apply_output_limit("pubsub 1mb 0", l).empty());
  CHECK_FALSE(apply_output_limit("pubsub x 0 0", l).empty());
}

TEST_CASE("glob_match matches as redis' stringmatchlen", "[heavy][commands]") {
  CHECK(glob_match("*", "anything"));
  CHECK(glob_match("ne*", "news"));
  CHECK_FALSE(glob_match("ne*", "snews"));
  CHECK(glob_match("h?llo", "hello"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-b]llo", "hbllo"));
  CHECK(glob_match("h\\*llo", "h*llo"));
  CHECK_FALSE(glob_match("h\\*llo", "hello"));
  CHECK_FALSE(glob_match("[a", "[a"));  // an unclosed set, as redis reads it
  CHECK(glob_match("a*b*c", "aXXbYYc"));
  // Exponential without redis' give-up rule; this must return at once.
  CHECK_FALSE(glob_match("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", std::string(60, 'a')));
}

TEST_CASE_METHOD(Fixture, "INFO has the sections and fields tools and parking rely on", "[heavy][commands]") {
  stats.active_connections = 2;
  stats.parking.parks_total = 7;
  const std::string all = run({"INFO"});
  for (const char* field : {"# Server", "redis_version:", "tcp_port:", "# Clients", "connected_clients:2",
                            "# Memory", "used_memory_rss:", "# Parking", "parked_connections:0",
                            "active_connections:2", "parks_total:7", "wakes_total:0", "park_failures_total:0"}) {
    INFO(field);
    CHECK(all.find(field) != std::string::npos);
  }
  const std::string parking = run({"INFO", "parking"});
  CHECK(parking.find("parked_connections:") != std::string::npos);
  CHECK(parking.find("# Server") == std::string::npos);
  const std::string memory = run({"INFO", "MEMORY"});
  CHECK(memory.find("used_memory_rss:") != std::string::npos);
  CHECK(resident_memory_bytes() > 0);
  CHECK(run({"INFO", "nosuchsection"}) == "$0\r\n\r\n");
}

TEST_CASE_METHOD(Fixture, "start-up questions of redis-cli and redis-benchmark get graceful answers", "[heavy][commands]") {
  CHECK(run({"CONFIG", "GET", "save"}) == "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  CHECK(run({"CONFIG", "GET", "appendonly"}) == "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  CHECK(run({"CONFIG", "GET", "nosuch"}) == "*0\r\n");
  CHECK(run({"CONFIG", "GET", "max*"}).starts_with("*4\r\n"));  // maxmemory, maxmemory-policy
  CHECK(run({"CONFIG", "SET", "x", "y"}).starts_with("-ERR Unknown option"));
  CHECK(run({"COMMAND", "DOCS"}) == "*0\r\n");
  CHECK(run({"COMMAND", "COUNT"}) == ":" + std::to_string(command_count()) + "\r\n");
  CHECK(run({"COMMAND"}).starts_with("*" + std::to_string(command_count()) + "\r\n"));
  CHECK(run({"COMMAND", "INFO", "get", "nosuch"}).starts_with("*2\r\n*6\r\n$3\r\nget\r\n:2\r\n"));
}

TEST_CASE_METHOD(Fixture, "QUIT answers OK and asks for the connection to close", "[heavy][commands]") {
  CHECK(run({"QUIT"}) == OK);
  CHECK(a.client.close_after_reply);
}
