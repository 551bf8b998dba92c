// RespParser: incremental, pure parser of RESP2 requests (what redis-cli and every Redis client
// send): multibulk arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline commands
// (`GET k\r\n`, with redis' quoting rules).
//
// Pure: bytes in, a request (or "need more", or a protocol error) out; no I/O, no logging.
// Incremental: a request that arrives in many pieces is scanned once — the parser remembers how
// far it got, so each call only looks at the new bytes.
// No allocation per request once warm: the argument vectors are reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace heavy {

// Where one argument lies, relative to the start of its request.
struct ArgSpan {
  std::size_t offset;
  std::size_t length;
};

// Limits that protect memory from one client. Smaller than redis' (512 MiB bulk, 1 GiB query
// buffer) on purpose: this server stands in for heavy sessions and must not be taken down by one
// oversized request.
struct RespLimits {
  std::size_t max_inline = 64 * 1024;           // an inline request line (and any `*N`/`$N` line)
  std::size_t max_bulk = 64 * 1024 * 1024;      // one bulk string argument
  std::size_t max_args = 1024 * 1024;           // elements of one multibulk request
  std::size_t max_request = 128 * 1024 * 1024;  // all bytes of one request
};

enum class ParseStatus {
  complete,   // a request is ready: args(), and `consumed` bytes belong to it
  need_more,  // the input ends inside a request; call again with the same bytes plus more
  error,      // protocol error (error()); the connection should answer it and close
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  std::size_t consumed = 0;  // bytes of input used by the complete request
};

class RespParser {
 public:
  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  // Parses the request that starts at input[0]. Between calls returning need_more the caller
  // may move its buffer, but input must start with the same bytes as before (plus more).
  // After `complete` the caller drops `consumed` bytes and calls again for the next request.
  // A complete request may have zero arguments (an empty line, `*0`): redis ignores those.
  [[nodiscard]] ParseResult parse(std::string_view input);

  // Arguments of the last complete request: views into the input given to parse() (or into
  // the parser, for unquoted inline arguments). Valid until the next parse() or until the
  // input bytes move.
  [[nodiscard]] std::span<const std::string_view> args() const noexcept { return args_; }

  // The message of the last error, e.g. "Protocol error: invalid bulk length".
  [[nodiscard]] std::string_view error() const noexcept { return error_; }

  // True while a request has started but is not complete.
  [[nodiscard]] bool in_progress() const noexcept { return state_ != State::start; }

  // Input bytes the current request needs at least (counted from its start), when known: lets
  // the caller size its buffer once for a large bulk string. 0 when unknown.
  [[nodiscard]] std::size_t bytes_needed() const noexcept { return bytes_needed_; }

  // Forgets any partial request.
  void reset() noexcept;

  [[nodiscard]] const RespLimits& limits() const noexcept { return limits_; }

 private:
  enum class State : std::uint8_t { start, inline_line, multibulk_header, bulk_header, bulk_data };

  ParseResult parse_inline(std::string_view input);
  ParseResult parse_multibulk(std::string_view input);
  ParseResult fail(std::string_view message);
  ParseResult finish(std::string_view input, std::size_t consumed);
  // Finds "\r\n" at or after `from`; returns its offset, npos when more input is needed, or
  // sets an error (returned as error_line) for a lone '\r' or a line longer than max_inline.
  std::size_t find_line_end(std::string_view input, std::size_t from, std::string_view too_big);

  RespLimits limits_;
  State state_ = State::start;
  std::size_t scanned_ = 0;       // offset (from the request's start) parsed so far
  std::size_t line_start_ = 0;    // bulk_header: where the `$N` line starts
  std::size_t args_left_ = 0;     // multibulk: elements still to come
  std::size_t bulk_length_ = 0;   // bulk_data: length of the current bulk string
  std::size_t bytes_needed_ = 0;
  bool line_error_ = false;
  std::vector<ArgSpan> spans_;            // arguments, relative to the request start (or scratch)
  std::vector<std::string_view> args_;    // the complete request's arguments
  std::string inline_scratch_;            // unquoted inline arguments live here
  std::string error_;
};

}  // namespace heavy
