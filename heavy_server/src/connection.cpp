#include "heavy/connection.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "heavy/server.hpp"
#include "heavy/session_blob.hpp"

namespace heavy {

namespace {

// One read takes up to this much; larger requests grow the buffer as their bytes arrive.
constexpr std::size_t kReadChunk = 16 * 1024;
// Above this much unsent output a connection stops taking requests until the client reads:
// a client that pipelines without reading cannot make the server buffer without bound.
constexpr std::size_t kOutputHighWater = 1024 * 1024;

}  // namespace

Connection::Connection(Server& server, parker::UniqueFd fd, Session session)
    : server_(server),
      fd_(std::move(fd)),
      session_(std::move(session)),
      parser_(server.options().limits),
      client_{session_, output_, this} {}

Connection* Connection::start(Server& server, parker::UniqueFd& fd, Session session) {
  // Until the watcher exists, a failure deletes the object here (the destructor is private:
  // everywhere else only the close callback may delete a Connection).
  std::unique_ptr<Connection, void (*)(Connection*)> conn(new Connection(server, std::move(fd), std::move(session)),
                                                          [](Connection* p) { delete p; });
  if (!conn->working_set_.allocate(server.options().session_bytes) ||
      uv_poll_init_socket(server.loop(), &conn->poll_, conn->fd_.get()) != 0) {
    fd = std::move(conn->fd_);
    return nullptr;
  }
  // What a blob brought along goes into the buffers; resume() acts on it.
  Session& s = conn->session_;
  if (!s.unparsed_input.empty()) {
    std::span<char> space = conn->input_.writable(s.unparsed_input.size());
    std::copy(s.unparsed_input.begin(), s.unparsed_input.end(), space.begin());
    conn->input_.commit(s.unparsed_input.size());
  }
  conn->output_.raw(s.unsent_output);
  s.unparsed_input = std::string();
  s.unsent_output = std::string();
  // From here on the object belongs to libuv's handle lifetime: freed in on_closed only.
  Connection* c = conn.release();
  c->poll_.data = c;
  c->poll_started_ = true;
  c->last_input_ms_ = uv_now(server.loop());
  c->update_events();
  if (c->events_ == 0) {  // uv_poll_start failed
    fd = c->detach();
    return nullptr;
  }
  return c;
}

void Connection::on_closed(uv_handle_t* handle) noexcept { delete static_cast<Connection*>(handle->data); }

void Connection::stop_watching() noexcept {
  closing_ = true;
  server_.forget(*this);
  // uv_close stops the poll synchronously (epoll_ctl DEL), so the fd may be closed or handed
  // away right after this; only the memory waits for the close callback.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_closed);
  working_set_.release();
  input_.release();
  output_.clear();
}

void Connection::close() noexcept {
  if (closing_) return;
  stop_watching();
  fd_.reset();
}

parker::UniqueFd Connection::detach() noexcept {
  if (closing_) return {};
  stop_watching();
  return std::move(fd_);
}

bool Connection::idle() const noexcept {
  // After service() the input holds at most one partial request unless paused_.
  return !closing_ && output_.empty() && !paused_ && !close_after_reply_;
}

std::optional<std::vector<std::byte>> Connection::encode_blob(std::size_t max_bytes) {
  session_.unparsed_input.assign(input_.unparsed());
  session_.unsent_output.assign(output_.pending());
  auto blob = encode_session(session_, max_bytes);
  session_.unparsed_input = std::string();
  session_.unsent_output = std::string();
  return blob;
}

void Connection::resume() noexcept {
  if (closing_ || (input_.empty() && output_.empty())) return;
  service();
}

void Connection::begin_drain() noexcept {
  if (closing_) return;
  draining_ = true;
  if (input_.empty() && !parser_.in_progress()) close_after_reply_ = true;
  if (close_after_reply_ && output_.empty()) {
    close();
    return;
  }
  update_events();
}

void Connection::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* c = static_cast<Connection*>(handle->data);
  if (c->closing_) return;
  if (status < 0) {
    c->close();
    return;
  }
  if ((events & UV_READABLE) != 0) c->on_readable();
  if (!c->closing_ && (events & UV_WRITABLE) != 0) c->service();
}

void Connection::on_readable() noexcept {
  std::size_t want = kReadChunk;
  const std::size_t have = input_.unparsed().size();
  if (parser_.bytes_needed() > have) {
    // A large bulk string is on its way: grow geometrically as its bytes arrive rather than
    // trusting its announced length up front.
    want = std::clamp(parser_.bytes_needed() - have, kReadChunk, std::max(kReadChunk, input_.capacity()));
  }
  std::span<char> space;
  try {
    space = input_.writable(want);
  } catch (const std::bad_alloc&) {
    close();
    return;
  }
  ssize_t n = ::recv(fd_.get(), space.data(), space.size(), 0);
  if (n > 0) {
    input_.commit(static_cast<std::size_t>(n));
    if (input_.unparsed().size() > server_.options().client_limits.query_buffer_bytes) {
      // redis closes such a client without a reply ("closing client that reached max query
      // buffer length").
      spdlog::warn("client {}: query buffer over client-query-buffer-limit ({} bytes); closing it", id(),
                   server_.options().client_limits.query_buffer_bytes);
      ++server_.stats().client_limit_closes;
      close();
      return;
    }
    last_input_ms_ = uv_now(server_.loop());
    server_.mark_active(*this);
    service();
  } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    close();  // end of stream or a dead socket; whatever was pending cannot be delivered
  }
}

void Connection::process_input() {
  Engine& engine = server_.engine();
  engine.set_now_ms(static_cast<std::int64_t>(uv_now(server_.loop())));
  while (!close_after_reply_) {
    if (output_.pending_size() > kOutputHighWater) {
      paused_ = true;
      return;
    }
    const std::string_view in = input_.unparsed();
    if (in.empty()) break;
    const ParseResult r = parser_.parse(in);
    if (r.status == ParseStatus::need_more) break;
    if (r.status == ParseStatus::error) {
      ++server_.stats().protocol_errors;
      std::string text = "ERR ";
      text.append(parser_.error());
      output_.error(text);
      close_after_reply_ = true;
      input_.consume(in.size());
      break;
    }
    if (!parser_.args().empty()) engine.execute(client_, parser_.args());
    input_.consume(r.consumed);
    if (client_.close_after_reply) close_after_reply_ = true;
  }
  input_.trim();
  if (draining_ && input_.empty() && !parser_.in_progress()) close_after_reply_ = true;
}

void Connection::service() noexcept {
  while (true) {
    try {
      process_input();
    } catch (const std::bad_alloc&) {
      close();
      return;
    }
    if (!send_output() || output_over_limit()) {
      close();
      return;
    }
    if (!output_.empty()) break;  // the socket is full: wait until it is writable
    if (close_after_reply_ || over_limit_) {
      close();
      return;
    }
    if (!paused_) break;
    paused_ = false;  // the client read everything: go on with the requests already buffered
  }
  update_events();
}

bool Connection::send_output() noexcept {
  while (!output_.empty()) {
    const std::string_view out = output_.pending();
    ssize_t n = ::send(fd_.get(), out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      output_.consume(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return true;
    } else {
      return false;
    }
  }
  return true;
}

void Connection::update_events() noexcept {
  if (closing_) return;
  int want = 0;
  if (!paused_ && !close_after_reply_) want |= UV_READABLE;
  if (!output_.empty()) want |= UV_WRITABLE;
  if (want == events_) return;
  int rc = want == 0 ? uv_poll_stop(&poll_) : uv_poll_start(&poll_, want, on_poll);
  if (rc == 0) events_ = want;
}

void Connection::deliver(std::string_view channel, std::string_view message) {
  if (closing_ || over_limit_) return;
  output_.array(3);
  output_.bulk("message");
  output_.bulk(channel);
  output_.bulk(message);
  queue_delivery();
}

void Connection::deliver_pattern(std::string_view pattern, std::string_view channel, std::string_view message) {
  if (closing_ || over_limit_) return;
  output_.array(4);
  output_.bulk("pmessage");
  output_.bulk(pattern);
  output_.bulk(channel);
  output_.bulk(message);
  queue_delivery();
}

void Connection::deliver_raw(std::string_view pushes) {
  if (closing_ || over_limit_ || pushes.empty()) return;
  output_.raw(pushes);
  queue_delivery();
}

// Closing waits for the flush (deliver() runs inside PUBLISH's walk of the registry).
void Connection::queue_delivery() noexcept {
  if (output_over_limit()) over_limit_ = true;
  // Over the limit it must close even if the socket never becomes writable again (a client
  // that does not read): the flush does it.
  if (!flush_queued_ && ((events_ & UV_WRITABLE) == 0 || over_limit_)) {
    flush_queued_ = true;
    server_.queue_flush(this);
  }
}

// redis' checkClientOutputBufferLimits: past the hard limit at once; past the soft one only
// once it has stayed past it for longer than its seconds; below it the soft clock restarts.
bool Connection::output_over_limit() noexcept {
  const ClientLimits& limits = server_.options().client_limits;
  const OutputBufferLimit& l = session_.subscribed() ? limits.pubsub : limits.normal;
  const std::size_t used = output_.pending_size();
  bool over = l.hard_bytes != 0 && used >= l.hard_bytes;
  if (l.soft_bytes != 0 && used >= l.soft_bytes) {
    const std::uint64_t now = uv_now(server_.loop()) + 1;  // +1: 0 means "not past it"
    if (soft_limit_since_ms_ == 0) {
      soft_limit_since_ms_ = now;
    } else if (now - soft_limit_since_ms_ > l.soft_seconds * 1000) {
      over = true;
    }
  } else {
    soft_limit_since_ms_ = 0;
  }
  if (over && !over_limit_) {
    spdlog::warn("client {}: {} bytes of unsent output, over client-output-buffer-limit {}; closing it", id(), used,
                 session_.subscribed() ? "pubsub" : "normal");
    ++server_.stats().client_limit_closes;
  }
  return over;
}

void Connection::flush_queued() noexcept {
  flush_queued_ = false;
  if (closing_) return;
  if (over_limit_ || !send_output()) {
    close();
    return;
  }
  update_events();
}

}  // namespace heavy
