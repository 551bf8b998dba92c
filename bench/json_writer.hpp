// A tiny streaming JSON writer: objects, arrays, strings, numbers, booleans. Enough for the
// results file; no parsing. Non-finite numbers are written as null (JSON has no NaN).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace parker::bench {

class JsonWriter {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  // Inside an object: the key of the next value.
  void key(std::string_view name);
  void value(std::string_view text);
  void value(const char* text) { value(std::string_view(text)); }
  void value(double number);
  void value(long long number);
  void value(unsigned long long number);
  void value(int number) { value(static_cast<long long>(number)); }
  void value(unsigned number) { value(static_cast<unsigned long long>(number)); }
  void value(long number) { value(static_cast<long long>(number)); }
  void value(unsigned long number) { value(static_cast<unsigned long long>(number)); }
  void value(bool flag);
  void null();

  // key + value in one call.
  template <class T>
  void field(std::string_view name, const T& v) {
    key(name);
    value(v);
  }

  [[nodiscard]] const std::string& text() const noexcept { return out_; }

 private:
  void before_value();
  void newline();

  std::string out_;
  // One entry per open container: true once it holds an element (a comma is due).
  std::vector<bool> has_elements_;
  bool after_key_ = false;
};

[[nodiscard]] std::string json_escape(std::string_view text);

}  // namespace parker::bench
