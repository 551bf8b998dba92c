// The RESP2 request parser: complete, partial and pipelined input, inline quoting, every
// malformed form and every size limit.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "heavy/resp_parser.hpp"

using heavy::ParseStatus;
using heavy::RespLimits;
using heavy::RespParser;

namespace {

std::vector<std::string> args_of(const RespParser& p) {
  std::vector<std::string> out;
  for (auto a : p.args()) out.emplace_back(a);
  return out;
}

// Parses one complete request from the whole of `input`.
std::vector<std::string> parse_one(const std::string& input) {
  RespParser p;
  auto r = p.parse(input);
  REQUIRE(r.status == ParseStatus::complete);
  REQUIRE(r.consumed == input.size());
  return args_of(p);
}

// The error a malformed input gets (fed whole).
std::string error_of(const std::string& input, RespLimits limits = {}) {
  RespParser p(limits);
  auto r = p.parse(input);
  REQUIRE(r.status == ParseStatus::error);
  return std::string(p.error());
}

using Args = std::vector<std::string>;

}  // namespace

TEST_CASE("a multibulk request of bulk strings parses to its arguments", "[heavy][resp]") {
  CHECK(parse_one("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n") == Args{"SET", "key", "value"});
  CHECK(parse_one("*1\r\n$4\r\nPING\r\n") == Args{"PING"});
}

TEST_CASE("bulk strings are binary-safe: CR, LF and NUL inside them are data", "[heavy][resp]") {
  const std::string value("a\r\nb\0c", 6);
  CHECK(parse_one("*2\r\n$4\r\nECHO\r\n$6\r\n" + value + "\r\n") == Args{"ECHO", value});
  CHECK(parse_one("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n") == Args{"ECHO", ""});
}

TEST_CASE("inline commands split on blanks and understand redis quoting", "[heavy][resp]") {
  CHECK(parse_one("PING\r\n") == Args{"PING"});
  CHECK(parse_one("PING\n") == Args{"PING"});
  CHECK(parse_one("  SET   k\tv  \r\n") == Args{"SET", "k", "v"});
  CHECK(parse_one("SET k \"hello world\"\r\n") == Args{"SET", "k", "hello world"});
  CHECK(parse_one("SET k \"a\\n\\r\\t\\\\\\\"\\x41\"\r\n") == Args{"SET", "k", "a\n\r\t\\\"A"});
  CHECK(parse_one("SET k 'it\\'s'\r\n") == Args{"SET", "k", "it's"});
  CHECK(parse_one("SET k ''\r\n") == Args{"SET", "k", ""});
}

TEST_CASE("empty requests are complete with no arguments", "[heavy][resp]") {
  for (std::string input : {"\r\n", "\n", "   \r\n", "*0\r\n", "*-1\r\n"}) {
    RespParser p;
    auto r = p.parse(input);
    CHECK(r.status == ParseStatus::complete);
    CHECK(r.consumed == input.size());
    CHECK(p.args().empty());
  }
}

TEST_CASE("pipelined requests come out one at a time, each consuming its own bytes", "[heavy][resp]") {
  const std::string input = "*1\r\n$4\r\nPING\r\nECHO hi\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI";
  RespParser p;
  std::string_view rest = input;
  std::vector<Args> seen;
  for (int i = 0; i < 10; ++i) {
    auto r = p.parse(rest);
    if (r.status != ParseStatus::complete) {
      CHECK(r.status == ParseStatus::need_more);
      break;
    }
    seen.push_back(args_of(p));
    rest.remove_prefix(r.consumed);
  }
  CHECK(seen == std::vector<Args>{{"PING"}, {"ECHO", "hi"}, {"GET", "k"}});
  CHECK(rest == "*1\r\n$4\r\nPI");
  CHECK(p.in_progress());
}

TEST_CASE("input arriving byte by byte needs more until the last byte, in a moving buffer", "[heavy][resp]") {
  const std::string inputs[] = {
      "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$12\r\nhello\r\nworld\r\n",
      "SET k \"quoted value\"\r\n",
  };
  for (const std::string& full : inputs) {
    RespParser p;
    for (std::size_t n = 1; n < full.size(); ++n) {
      std::string prefix = full.substr(0, n);  // a fresh copy: the buffer "moves" every call
      auto r = p.parse(prefix);
      INFO("prefix length " << n);
      REQUIRE(r.status == ParseStatus::need_more);
    }
    std::string whole = full;
    auto r = p.parse(whole);
    REQUIRE(r.status == ParseStatus::complete);
    CHECK(r.consumed == full.size());
    CHECK_FALSE(p.in_progress());
  }
}

TEST_CASE("the parser says how many bytes a large bulk string still needs", "[heavy][resp]") {
  RespParser p;
  const std::string head = "*2\r\n$4\r\nECHO\r\n$100000\r\n";
  auto r = p.parse(head + "abc");
  CHECK(r.status == ParseStatus::need_more);
  CHECK(p.bytes_needed() == head.size() + 100000 + 2);
  CHECK(p.in_progress());
}

TEST_CASE("malformed multibulk requests get redis' protocol errors", "[heavy][resp]") {
  CHECK(error_of("*abc\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*1x\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*+1\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*99999999999999999999999\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*2\r\n:1\r\n") == "Protocol error: expected '$', got ':'");
  CHECK(error_of("*1\r\nPING\r\n") == "Protocol error: expected '$', got 'P'");
  CHECK(error_of("*1\r\n$abc\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1\r\n$-1\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1\r\n$\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1\r\n$3\r\nfooXY") == "Protocol error: expected CRLF after bulk data");
  CHECK(error_of("*1\r\n$3\r\nfoo\rX") == "Protocol error: expected CRLF after bulk data");
  CHECK(error_of("*1\rX") == "Protocol error: expected '\\n' after '\\r'");
  CHECK(error_of("*1\r\n$3\rX") == "Protocol error: expected '\\n' after '\\r'");
}

TEST_CASE("malformed inline requests get protocol errors", "[heavy][resp]") {
  CHECK(error_of("SET k \"unterminated\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(error_of("SET k 'unterminated\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(error_of("SET k \"a\"b\r\n") == "Protocol error: unbalanced quotes in request");
  CHECK(error_of("SET k 'a'b\r\n") == "Protocol error: unbalanced quotes in request");
}

TEST_CASE("size limits stop oversized requests before they are buffered", "[heavy][resp]") {
  RespLimits small;
  small.max_inline = 16;
  small.max_bulk = 100;
  small.max_args = 3;
  small.max_request = 150;
  // An inline line longer than the limit, with or without its newline yet.
  CHECK(error_of(std::string(17, 'a'), small) == "Protocol error: too big inline request");
  CHECK(error_of(std::string(20, 'a') + "\r\n", small) == "Protocol error: too big inline request");
  // Count lines that never end.
  CHECK(error_of("*" + std::string(20, '1'), small) == "Protocol error: too big mbulk count string");
  CHECK(error_of("*1\r\n$" + std::string(20, '1'), small) == "Protocol error: too big bulk count string");
  // Counts over the limits: refused from the header alone.
  CHECK(error_of("*4\r\n", small) == "Protocol error: invalid multibulk length");
  CHECK(error_of("*1\r\n$101\r\n", small) == "Protocol error: invalid bulk length");
  CHECK(error_of("*2\r\n$100\r\n" + std::string(100, 'x') + "\r\n$60\r\n", small) ==
        "Protocol error: request too large");
  // The defaults: 64 MiB bulk strings, 1M elements.
  CHECK(error_of("*1\r\n$67108865\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1048577\r\n") == "Protocol error: invalid multibulk length");
  CHECK(RespParser().parse("*1048576\r\n").status == ParseStatus::need_more);
  CHECK(RespParser().parse("*1\r\n$67108864\r\n").status == ParseStatus::need_more);
}

TEST_CASE("a parser is usable again after an error or a reset", "[heavy][resp]") {
  RespParser p;
  CHECK(p.parse("*x\r\n").status == ParseStatus::error);
  CHECK_FALSE(p.in_progress());
  auto r = p.parse("PING\r\n");
  CHECK(r.status == ParseStatus::complete);
  CHECK(args_of(p) == Args{"PING"});

  CHECK(p.parse("*2\r\n$3\r\nGE").status == ParseStatus::need_more);
  p.reset();
  r = p.parse("*1\r\n$4\r\nQUIT\r\n");
  CHECK(r.status == ParseStatus::complete);
  CHECK(args_of(p) == Args{"QUIT"});
}

TEST_CASE("a request with many arguments parses and its storage is given back", "[heavy][resp]") {
  std::string input = "*10000\r\n";
  for (int i = 0; i < 10000; ++i) input += "$1\r\nx\r\n";
  RespParser p;
  auto r = p.parse(input);
  REQUIRE(r.status == ParseStatus::complete);
  CHECK(p.args().size() == 10000);
  r = p.parse("PING\r\n");
  CHECK(r.status == ParseStatus::complete);
  CHECK(p.args().size() == 1);
}
