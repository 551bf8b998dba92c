// A tiny blocking Redis-protocol client: enough to set a key and time GETs one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "parker/unique_fd.hpp"

namespace parker::bench {

class RespClient {
 public:
  // Connects to 127.0.0.1:port; throws on failure.
  explicit RespClient(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Sends one command and returns its reply as raw RESP text ("+OK\r\n", "$3\r\nbar\r\n").
  // Throws on a connection error or timeout; an error reply ("-ERR ...") is returned as is.
  std::string command(const std::vector<std::string>& args);
  // command() timed: microseconds from send to the last byte of the reply.
  double timed_command_us(const std::vector<std::string>& args, std::string* reply = nullptr);

 private:
  std::string read_reply();
  std::string read_line();
  void fill();

  UniqueFd fd_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

[[nodiscard]] std::string encode_command(const std::vector<std::string>& args);

}  // namespace parker::bench
