// TCP on the loopback interface, the only network the harness uses.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "parker/unique_fd.hpp"

namespace parker::bench {

// A listening socket on `ip`:`port` (0: the kernel picks). Throws on failure.
[[nodiscard]] UniqueFd listen_tcp(const std::string& ip, std::uint16_t port = 0,
                                  int backlog = 4096, bool nonblocking = true);
[[nodiscard]] std::uint16_t local_port(int socket);

// A port that was free a moment ago on 127.0.0.1, for servers we start (they bind it
// themselves; if someone takes it in between, their start fails and says so).
[[nodiscard]] std::uint16_t pick_free_port();

// A blocking connected socket to ip:port, from `source_ip` if given (port chosen at connect
// time, so each source address has its own ~28k ephemeral ports). Throws on failure, with
// errno in the message.
[[nodiscard]] UniqueFd connect_tcp(const std::string& ip, std::uint16_t port,
                                   const std::string& source_ip = {}, bool nodelay = true);
// As connect_tcp, but returns an invalid fd and sets `error` (errno) instead of throwing.
[[nodiscard]] UniqueFd try_connect_tcp(const std::string& ip, std::uint16_t port,
                                       const std::string& source_ip, int& error);

// The i-th extra loopback source address: 127.0.0.2, 127.0.0.3, ... 127.0.1.2, ...
[[nodiscard]] std::string loopback_source(std::size_t index);

// True once something accepts connections on 127.0.0.1:port, false after `timeout`.
[[nodiscard]] bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

// Blocking exact I/O with a deadline: false on timeout, EOF or error.
[[nodiscard]] bool write_all(int fd, const void* data, std::size_t size,
                             std::chrono::milliseconds timeout);
[[nodiscard]] bool read_exact(int fd, void* data, std::size_t size,
                              std::chrono::milliseconds timeout);

}  // namespace parker::bench
