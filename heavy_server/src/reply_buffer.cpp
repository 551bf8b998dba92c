#include "heavy/reply_buffer.hpp"

#include <charconv>

namespace heavy {

namespace {
// Storage above this is returned once drained: a 64 MiB GET must not pin 64 MiB per connection.
constexpr std::size_t kKeepCapacity = 64 * 1024;
}  // namespace

void ReplyBuffer::header(char type, long long value) {
  char buf[24];
  buf[0] = type;
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof buf - 2, value);
  (void)ec;  // 21 bytes always fit a long long
  end[0] = '\r';
  end[1] = '\n';
  data_.append(buf, static_cast<std::size_t>(end + 2 - buf));
}

void ReplyBuffer::simple(std::string_view text) {
  data_.push_back('+');
  data_.append(text);
  data_.append("\r\n");
}

void ReplyBuffer::error(std::string_view text) {
  data_.push_back('-');
  // A reply line cannot carry CR or LF; redis replaces them with spaces too.
  for (char c : text) data_.push_back(c == '\r' || c == '\n' ? ' ' : c);
  data_.append("\r\n");
}

void ReplyBuffer::integer(long long value) { header(':', value); }

void ReplyBuffer::bulk(std::string_view data) {
  header('$', static_cast<long long>(data.size()));
  data_.append(data);
  data_.append("\r\n");
}

void ReplyBuffer::null_bulk() { data_.append("$-1\r\n"); }
void ReplyBuffer::null_array() { data_.append("*-1\r\n"); }
void ReplyBuffer::array(std::size_t count) { header('*', static_cast<long long>(count)); }

void ReplyBuffer::consume(std::size_t n) noexcept {
  sent_ += n;
  if (sent_ >= data_.size()) {
    clear();
  } else if (sent_ > kKeepCapacity && sent_ * 2 > data_.size()) {
    // A slow reader: drop what was sent so the buffer does not grow with everything ever queued.
    data_.erase(0, sent_);
    sent_ = 0;
  }
}

void ReplyBuffer::clear() noexcept {
  data_.clear();
  sent_ = 0;
  if (data_.capacity() > kKeepCapacity) {
    std::string().swap(data_);
  }
}

}  // namespace heavy
