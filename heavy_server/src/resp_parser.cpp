#include "heavy/resp_parser.hpp"

#include <charconv>
#include <cstring>

namespace heavy {

namespace {

constexpr std::size_t npos = std::string_view::npos;
// Vectors grown past this by one huge request are given back afterwards, so a single
// `*1000000` request does not pin megabytes to a connection for its lifetime.
constexpr std::size_t kKeepCapacity = 4096;

// A strict decimal integer, the whole of `text`: optional '-', digits, no overflow.
bool parse_integer(std::string_view text, long long& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits an inline request line the way redis' sdssplitargs does: blanks separate arguments,
// "double quotes" understand \n \r \t \b \a \\ \" \xHH, 'single quotes' understand \', and a
// closing quote must be followed by a blank or the end of the line. Returns false on
// unbalanced quotes. Arguments are appended to `scratch`; their places go to `out`.
bool split_inline(std::string_view line, std::string& scratch, std::vector<ArgSpan>& out) {
  std::size_t i = 0;
  const std::size_t n = line.size();
  while (true) {
    while (i < n && is_blank(line[i])) ++i;
    if (i == n) return true;
    const std::size_t start = scratch.size();
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      if (in_double) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && hex_value(line[i + 2]) >= 0 &&
            hex_value(line[i + 3]) >= 0) {
          scratch.push_back(static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
          i += 4;
        } else if (c == '\\' && i + 1 < n) {
          char e = line[i + 1];
          switch (e) {
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            case 'b': e = '\b'; break;
            case 'a': e = '\a'; break;
            default: break;
          }
          scratch.push_back(e);
          i += 2;
        } else if (c == '"') {
          if (i + 1 < n && !is_blank(line[i + 1])) return false;
          ++i;
          done = true;
        } else {
          scratch.push_back(c);
          ++i;
        }
      } else if (in_single) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          scratch.push_back('\'');
          i += 2;
        } else if (c == '\'') {
          if (i + 1 < n && !is_blank(line[i + 1])) return false;
          ++i;
          done = true;
        } else {
          scratch.push_back(c);
          ++i;
        }
      } else {
        if (i == n || is_blank(line[i])) {
          done = true;
        } else if (line[i] == '"') {
          in_double = true;
          ++i;
        } else if (line[i] == '\'') {
          in_single = true;
          ++i;
        } else {
          scratch.push_back(line[i]);
          ++i;
        }
      }
    }
    out.push_back({start, scratch.size() - start});
  }
}

}  // namespace

void RespParser::reset() noexcept {
  state_ = State::start;
  scanned_ = 0;
  args_left_ = 0;
  bulk_length_ = 0;
  bytes_needed_ = 0;
  spans_.clear();
}

ParseResult RespParser::fail(std::string_view message) {
  error_.assign(message);
  reset();
  return {ParseStatus::error, 0};
}

ParseResult RespParser::parse(std::string_view input) {
  bytes_needed_ = 0;
  if (args_.capacity() > kKeepCapacity) args_ = {};
  args_.clear();
  if (state_ == State::start) {
    if (input.empty()) return {ParseStatus::need_more, 0};
    if (input[0] == '*') {
      state_ = State::multibulk_header;
      scanned_ = 1;
    } else {
      state_ = State::inline_line;
      scanned_ = 0;
    }
  }
  return state_ == State::inline_line ? parse_inline(input) : parse_multibulk(input);
}

std::size_t RespParser::find_line_end(std::string_view input, std::size_t line_start,
                                      std::string_view too_big) {
  line_error_ = false;
  const std::size_t limit = std::min(input.size(), line_start + limits_.max_inline);
  while (scanned_ < limit) {
    const void* cr = std::memchr(input.data() + scanned_, '\r', limit - scanned_);
    if (cr == nullptr) {
      scanned_ = limit;
      break;
    }
    std::size_t at = static_cast<std::size_t>(static_cast<const char*>(cr) - input.data());
    if (at + 1 >= input.size()) {
      scanned_ = at;  // the '\n' has not arrived yet; look at this '\r' again next time
      return npos;
    }
    if (input[at + 1] != '\n') {
      (void)fail("Protocol error: expected '\\n' after '\\r'");
      line_error_ = true;
      return npos;
    }
    return at;
  }
  if (scanned_ - line_start >= limits_.max_inline) {
    (void)fail(too_big);
    line_error_ = true;
  }
  return npos;
}

ParseResult RespParser::parse_multibulk(std::string_view input) {
  while (true) {
    switch (state_) {
      case State::multibulk_header: {
        std::size_t cr = find_line_end(input, 0, "Protocol error: too big mbulk count string");
        if (line_error_) return {ParseStatus::error, 0};
        if (cr == npos) return {ParseStatus::need_more, 0};
        long long count = 0;
        if (!parse_integer(input.substr(1, cr - 1), count) ||
            count > static_cast<long long>(limits_.max_args)) {
          return fail("Protocol error: invalid multibulk length");
        }
        scanned_ = cr + 2;
        if (count <= 0) return finish(input, scanned_);  // `*0`, `*-1`: an empty request
        args_left_ = static_cast<std::size_t>(count);
        spans_.reserve(std::min<std::size_t>(args_left_, 1024));
        state_ = State::bulk_header;
        line_start_ = scanned_;
        break;
      }
      case State::bulk_header: {
        if (scanned_ >= input.size()) return {ParseStatus::need_more, 0};
        if (input[line_start_] != '$') {
          std::string message = "Protocol error: expected '$', got '";
          message.push_back(input[line_start_]);
          message.push_back('\'');
          return fail(message);
        }
        if (scanned_ == line_start_) scanned_ = line_start_ + 1;
        std::size_t cr = find_line_end(input, line_start_, "Protocol error: too big bulk count string");
        if (line_error_) return {ParseStatus::error, 0};
        if (cr == npos) return {ParseStatus::need_more, 0};
        long long length = 0;
        if (!parse_integer(input.substr(line_start_ + 1, cr - line_start_ - 1), length) || length < 0 ||
            static_cast<unsigned long long>(length) > limits_.max_bulk) {
          return fail("Protocol error: invalid bulk length");
        }
        scanned_ = cr + 2;
        bulk_length_ = static_cast<std::size_t>(length);
        if (scanned_ + bulk_length_ + 2 > limits_.max_request) return fail("Protocol error: request too large");
        state_ = State::bulk_data;
        break;
      }
      case State::bulk_data: {
        const std::size_t end = scanned_ + bulk_length_;
        if (input.size() < end + 2) {
          bytes_needed_ = end + 2;
          return {ParseStatus::need_more, 0};
        }
        if (input[end] != '\r' || input[end + 1] != '\n') {
          return fail("Protocol error: expected CRLF after bulk data");
        }
        spans_.push_back({scanned_, bulk_length_});
        scanned_ = end + 2;
        if (--args_left_ == 0) return finish(input, scanned_);
        state_ = State::bulk_header;
        line_start_ = scanned_;
        break;
      }
      default:
        return fail("Protocol error: parser state");  // unreachable
    }
  }
}

ParseResult RespParser::parse_inline(std::string_view input) {
  const void* nl = scanned_ < input.size()
                       ? std::memchr(input.data() + scanned_, '\n', input.size() - scanned_)
                       : nullptr;
  if (nl == nullptr) {
    scanned_ = input.size();
    if (input.size() > limits_.max_inline) return fail("Protocol error: too big inline request");
    return {ParseStatus::need_more, 0};
  }
  std::size_t at = static_cast<std::size_t>(static_cast<const char*>(nl) - input.data());
  if (at > limits_.max_inline) return fail("Protocol error: too big inline request");
  std::string_view line = input.substr(0, at);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  inline_scratch_.clear();
  if (inline_scratch_.capacity() > limits_.max_inline) inline_scratch_.shrink_to_fit();
  spans_.clear();
  if (!split_inline(line, inline_scratch_, spans_)) return fail("Protocol error: unbalanced quotes in request");
  for (const ArgSpan& a : spans_) args_.emplace_back(inline_scratch_.data() + a.offset, a.length);
  reset();
  return {ParseStatus::complete, at + 1};
}

ParseResult RespParser::finish(std::string_view input, std::size_t consumed) {
  for (const ArgSpan& s : spans_) args_.emplace_back(input.data() + s.offset, s.length);
  if (spans_.capacity() > kKeepCapacity) spans_ = {};
  reset();
  return {ParseStatus::complete, consumed};
}

}  // namespace heavy
