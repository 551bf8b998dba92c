// Small TCP helpers, each with a one-line contract. Errors name the system call that failed.
#pragma once

#include <cstdint>
#include <string>

#include "parker/unique_fd.hpp"

namespace heavy {

struct ListenResult {
  parker::UniqueFd fd;  // a non-blocking, close-on-exec listening socket; invalid on error
  std::string error;    // e.g. "bind 127.0.0.1:6380: Address already in use"
};

// Listens on `host` (a numeric IPv4/IPv6 address or a name) and `port` (0: ephemeral).
[[nodiscard]] ListenResult listen_tcp(const std::string& host, std::uint16_t port, int backlog = 511);

// The local address of a socket as "127.0.0.1:6380" or "[::1]:6380"; empty on error.
[[nodiscard]] std::string local_address(int fd);
// The local port of a socket; 0 on error.
[[nodiscard]] std::uint16_t local_port(int fd);

// Makes `fd` non-blocking and sets TCP_NODELAY (replies must not wait for Nagle). Best effort
// for NODELAY; false when the socket cannot be made non-blocking.
bool prepare_client_socket(int fd) noexcept;

}  // namespace heavy
