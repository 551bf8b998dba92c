#include "resp_client.hpp"

#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "latency_probe.hpp"
#include "loopback.hpp"

namespace parker::bench {

std::string encode_command(const std::vector<std::string>& args) {
  std::string out = fmt::format("*{}\r\n", args.size());
  for (const auto& a : args) out += fmt::format("${}\r\n{}\r\n", a.size(), a);
  return out;
}

RespClient::RespClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : fd_(connect_tcp("127.0.0.1", port)), timeout_(timeout) {
  set_io_timeouts(fd_.get(), timeout);
}

void RespClient::fill() {
  char buf[16384];
  ssize_t n;
  do {
    n = ::recv(fd_.get(), buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0) throw std::runtime_error("RESP server closed the connection");
  if (n < 0) throw std::runtime_error(fmt::format("RESP recv: {}", std::strerror(errno)));
  buffer_.append(buf, static_cast<std::size_t>(n));
}

std::string RespClient::read_line() {
  for (int guard = 0; guard < 100000; ++guard) {
    auto eol = buffer_.find("\r\n");
    if (eol != std::string::npos) {
      std::string line = buffer_.substr(0, eol + 2);
      buffer_.erase(0, eol + 2);
      return line;
    }
    fill();
  }
  throw std::runtime_error("RESP line too long");
}

std::string RespClient::read_reply() {
  std::string line = read_line();
  if (line.size() < 3) throw std::runtime_error("bad RESP reply");
  switch (line[0]) {
    case '+':
    case '-':
    case ':':
      return line;
    case '$': {
      long long len = std::stoll(line.substr(1));
      if (len < 0) return line;
      auto need = static_cast<std::size_t>(len) + 2;
      while (buffer_.size() < need) fill();
      line += buffer_.substr(0, need);
      buffer_.erase(0, need);
      return line;
    }
    case '*': {
      long long count = std::stoll(line.substr(1));
      for (long long i = 0; i < count; ++i) line += read_reply();
      return line;
    }
    default:
      throw std::runtime_error("unknown RESP reply type: " + line.substr(0, 1));
  }
}

std::string RespClient::command(const std::vector<std::string>& args) {
  std::string request = encode_command(args);
  if (!write_all(fd_.get(), request.data(), request.size(), timeout_)) {
    throw std::runtime_error("RESP send failed");
  }
  return read_reply();
}

double RespClient::timed_command_us(const std::vector<std::string>& args, std::string* reply) {
  timespec start{}, end{};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  std::string r = command(args);
  ::clock_gettime(CLOCK_MONOTONIC, &end);
  if (reply != nullptr) *reply = std::move(r);
  return static_cast<double>(end.tv_sec - start.tv_sec) * 1e6 +
         static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e3;
}

}  // namespace parker::bench
