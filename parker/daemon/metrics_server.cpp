#include "metrics_server.hpp"

#include <http_parser.h>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace parker::daemon {

// One HTTP client: its TCP handle and its timeout timer, both in this record, which is freed
// when the second of them has closed.
struct MetricsServer::Connection {
  MetricsServer* server;
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_write_t write_req{};
  http_parser parser{};
  std::string url;
  std::size_t request_bytes = 0;
  std::string response;  // kept until the write completes
  int open_handles = 0;
  bool answered = false;
  bool closing = false;

  explicit Connection(MetricsServer* s) : server(s) {}

  void close() noexcept {
    if (closing) return;
    closing = true;
    server->forget(this);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
  }

  static void on_closed(uv_handle_t* handle) noexcept {
    auto* c = static_cast<Connection*>(handle->data);
    if (--c->open_handles == 0) delete c;
  }

  void answer(int status, std::string_view reason, std::string_view content_type, std::string body) noexcept;
  void on_bytes(const char* data, std::size_t n) noexcept;
};

namespace {

const http_parser_settings& parser_settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_url = [](http_parser* p, const char* at, std::size_t length) {
      static_cast<MetricsServer::Connection*>(p->data)->url.append(at, length);
      return 0;
    };
    // Stop at the end of the first request: one request per connection.
    s.on_message_complete = [](http_parser* p) {
      http_parser_pause(p, 1);
      return 0;
    };
    return s;
  }();
  return settings;
}

void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) noexcept {
  // One read at a time into a fixed buffer: the parser keeps no pointers into it beyond the
  // call, and only the url (bounded by kMaxRequestBytes) is copied.
  static char buffer[4096];
  *buf = uv_buf_init(buffer, sizeof buffer);
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
  auto* c = static_cast<MetricsServer::Connection*>(stream->data);
  if (nread < 0) {
    c->close();  // EOF before a whole request, or a reset
    return;
  }
  if (nread > 0) c->on_bytes(buf->base, static_cast<std::size_t>(nread));
}

}  // namespace

void MetricsServer::Connection::on_bytes(const char* data, std::size_t n) noexcept {
  if (answered) return;
  request_bytes += n;
  if (request_bytes > kMaxRequestBytes) {
    answer(431, "Request Header Fields Too Large", "text/plain", "request too large\n");
    return;
  }
  http_parser_execute(&parser, &parser_settings(), data, n);
  auto err = HTTP_PARSER_ERRNO(&parser);
  if (err == HPE_PAUSED) {
    std::string_view path(url);
    path = path.substr(0, path.find('?'));
    if (path != "/metrics") {
      answer(404, "Not Found", "text/plain", "not found: try /metrics\n");
    } else if (parser.method != HTTP_GET) {
      answer(405, "Method Not Allowed", "text/plain", "only GET\n");
    } else {
      std::string body;
      try {
        body = server->render_();
      } catch (const std::exception& e) {
        spdlog::error("metrics: cannot render: {}", e.what());
        answer(500, "Internal Server Error", "text/plain", "error\n");
        return;
      }
      answer(200, "OK", "text/plain; version=0.0.4; charset=utf-8", std::move(body));
    }
  } else if (err != HPE_OK) {
    spdlog::debug("metrics: bad request: {}", http_errno_description(err));
    answer(400, "Bad Request", "text/plain", std::string(http_errno_description(err)) + "\n");
  }
}

void MetricsServer::Connection::answer(int status, std::string_view reason, std::string_view content_type,
                                       std::string body) noexcept {
  answered = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
  try {
    response = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                           status, reason, content_type, body.size());
    response += body;
  } catch (...) {
    close();
    return;
  }
  uv_buf_t buf = uv_buf_init(response.data(), static_cast<unsigned>(response.size()));
  write_req.data = this;
  int rc = uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1, [](uv_write_t* req, int) {
    // Written or failed: either way the exchange is over (the timer bounds a slow reader).
    static_cast<Connection*>(req->data)->close();
  });
  if (rc != 0) close();
}

void MetricsServer::on_connection(uv_stream_t* listener, int status) noexcept {
  auto* self = static_cast<MetricsServer*>(listener->data);
  if (status < 0) {
    spdlog::warn("metrics: accept: {}", uv_strerror(status));
    return;
  }
  Connection* c = nullptr;
  try {
    c = new Connection(self);
  } catch (...) {
    return;
  }
  uv_tcp_init(self->loop_, &c->tcp);
  uv_timer_init(self->loop_, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  c->parser.data = c;
  http_parser_init(&c->parser, HTTP_REQUEST);
  self->connections_.insert(c);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
      self->connections_.size() > kMaxConnections) {
    c->close();  // over the limit: the scraper sees its connection closed and retries later
    return;
  }
  uv_timer_start(&c->timer, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->close(); }, kTimeoutMs, 0);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

bool parse_listen_address(const std::string& text, sockaddr_storage& out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string host = text.substr(0, colon);
  std::string_view port_text = std::string_view(text).substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) return false;
  std::memset(&out, 0, sizeof out);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return uv_ip6_addr(host.substr(1, host.size() - 2).c_str(), static_cast<int>(port),
                       reinterpret_cast<sockaddr_in6*>(&out)) == 0;
  }
  return uv_ip4_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(&out)) == 0;
}

Error MetricsServer::listen(const std::string& address) {
  sockaddr_storage addr{};
  if (!parse_listen_address(address, addr)) return Error{EINVAL};
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  listening_ = true;  // the handle is initialised: close() must close it, whatever follows
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16, on_connection);
  if (rc != 0) {
    close();
    return Error{-rc};
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  char host[64] = "";
  if (bound.ss_family == AF_INET6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&bound);
    uv_ip6_name(a6, host, sizeof host);
    bound_ = fmt::format("[{}]:{}", host, ntohs(a6->sin6_port));
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&bound);
    uv_ip4_name(a4, host, sizeof host);
    bound_ = fmt::format("{}:{}", host, ntohs(a4->sin_port));
  }
  return {};
}

void MetricsServer::close() noexcept {
  if (listening_) {
    listening_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  }
  // Each close() removes its connection from the set: iterate over a copy.
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (Connection* c : open) c->close();
}

}  // namespace parker::daemon
