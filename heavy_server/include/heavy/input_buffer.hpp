// InputBuffer: bytes read from a client and not yet parsed.
//
// Reads land directly in its free tail; parsed requests are dropped from the front by moving an
// index, and the unparsed rest is moved to the front only when the tail runs out. Memory is
// allocated on the first read, grows only for requests that need it, and large storage is given
// back once the buffer is empty.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

namespace heavy {

class InputBuffer {
 public:
  static constexpr std::size_t kDefaultCapacity = 16 * 1024;

  [[nodiscard]] std::string_view unparsed() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Free space of at least `want` bytes at the end (moving or growing the storage).
  [[nodiscard]] std::span<char> writable(std::size_t want) {
    if (capacity_ - end_ < want && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (capacity_ - end_ < want) {
      std::size_t grown = capacity_ == 0 ? kDefaultCapacity : capacity_ * 2;
      if (grown < end_ + want) grown = end_ + want;
      auto bigger = std::make_unique_for_overwrite<char[]>(grown);
      if (end_ > 0) std::memcpy(bigger.get(), data_.get(), end_);
      data_ = std::move(bigger);
      capacity_ = grown;
    }
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }

  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Gives back storage grown past the default once nothing is buffered.
  void trim() noexcept {
    if (empty() && capacity_ > kDefaultCapacity) release();
  }
  void release() noexcept {
    data_.reset();
    capacity_ = begin_ = end_ = 0;
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace heavy
