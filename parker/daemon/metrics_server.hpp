// MetricsServer: parker's Prometheus endpoint — GET /metrics over HTTP/1.x on a TCP address
// (--metrics-listen), answered with the same text exposition `parkerctl stats` prints; 404
// for any other path, 405 for another method, 400 for what the parser rejects.
//
// An HTTP client is a peer like any other, so every resource it can make parker spend is
// bounded: at most kMaxConnections at once (more are closed at accept), kMaxRequestBytes per
// request (431 beyond), kTimeoutMs from accept to the end of the answer, one request per
// connection (Connection: close). Requests are parsed by Node's http_parser (Debian
// libhttp-parser-dev), never by hand.
//
// Lifetime: the libuv handles live in heap records freed in their close callbacks; close()
// closes everything and is idempotent. The loop must run once after close() before the
// server is destroyed.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

#include "parker/error.hpp"

namespace parker::daemon {

class MetricsServer {
 public:
  // Within the daemon's own-fd reserve (capacity.hpp), so descriptor room promised to
  // owners is never used by scrapes.
  static constexpr std::size_t kMaxConnections = 8;
  static constexpr std::size_t kMaxRequestBytes = 8192;
  static constexpr std::uint64_t kTimeoutMs = 5000;

  using Render = std::function<std::string()>;

  MetricsServer(uv_loop_t* loop, Render render) : loop_(loop), render_(std::move(render)) {}
  ~MetricsServer() = default;
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on "ADDR:PORT" ("127.0.0.1:9187", "[::1]:9187", "0.0.0.0:0"). EINVAL for a
  // malformed address; else the bind/listen error.
  [[nodiscard]] Error listen(const std::string& address);
  // The address really bound ("127.0.0.1:40213" when port 0 was asked for).
  [[nodiscard]] const std::string& address() const noexcept { return bound_; }
  void close() noexcept;

  struct Connection;  // one HTTP client (metrics_server.cpp)

 private:
  static void on_connection(uv_stream_t* server, int status) noexcept;
  void forget(Connection* c) noexcept { connections_.erase(c); }

  uv_loop_t* loop_;
  Render render_;
  uv_tcp_t listener_{};
  bool listening_ = false;
  std::string bound_;
  std::unordered_set<Connection*> connections_;  // open ones; each frees itself when closed
};

// Splits "ADDR:PORT" / "[V6]:PORT" into a socket address. Pure; for the option check too.
[[nodiscard]] bool parse_listen_address(const std::string& text, sockaddr_storage& out);

}  // namespace parker::daemon
