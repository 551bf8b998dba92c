// ReplyBuffer: a connection's output, written as RESP2 replies and sent from the front.
//
// Replies are appended; send() takes bytes from the front as the socket accepts them. The
// storage is reused: once everything is sent it is emptied without being freed, so the common
// request path allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace heavy {

class ReplyBuffer {
 public:
  void simple(std::string_view text);            // +OK
  void error(std::string_view text);             // -ERR ... (text includes the code)
  void integer(long long value);                 // :42
  void bulk(std::string_view data);              // $3\r\nfoo
  void null_bulk();                              // $-1
  void null_array();                             // *-1
  void array(std::size_t count);                 // *N, then N replies
  void ok() { raw("+OK\r\n"); }
  void raw(std::string_view bytes) { data_.append(bytes); }

  // Bytes not yet sent.
  [[nodiscard]] std::string_view pending() const noexcept {
    return std::string_view(data_).substr(sent_);
  }
  [[nodiscard]] std::size_t pending_size() const noexcept { return data_.size() - sent_; }
  [[nodiscard]] bool empty() const noexcept { return sent_ == data_.size(); }
  // Marks `n` pending bytes as sent; when all are, the storage is emptied (and given back if
  // one large reply made it big).
  void consume(std::size_t n) noexcept;
  void clear() noexcept;

  // Everything appended and not consumed, for tests.
  [[nodiscard]] std::string_view view() const noexcept { return pending(); }

 private:
  void header(char type, long long value);

  std::string data_;
  std::size_t sent_ = 0;
};

}  // namespace heavy
