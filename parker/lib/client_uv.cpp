// parker::UvClient — the libuv adapter: a uv_poll_t per connection to parker, one uv_timer_t
// for back-off and the HELLO timeout, one uv_prepare_t to flush once per loop iteration.
//
// Why a new poll handle per connection: a uv_poll_t is bound to one fd, and libuv must stop
// watching an fd before it is closed — the next connection often gets the same fd number,
// and a stale registration would swallow its events (libuv docs, uv_poll_t). So the core
// calls unwatch() before closing, we uv_close() that handle there, and its memory goes in
// its close callback.
#include "parker/client_uv.hpp"

#include <cerrno>

namespace parker {

struct UvClient::PollWatch {
  uv_poll_t poll{};
  UvClient* owner = nullptr;
  int fd = -1;
};

void UvClientCloser::operator()(UvClient* client) const noexcept {
  client->close();
  client->owner_released_ = true;
  client->delete_when_done();
}

UvClientPtr UvClient::create(uv_loop_t* loop, ClientCallbacks callbacks) {
  return UvClientPtr(new UvClient(loop, std::move(callbacks)));
}

UvClient::UvClient(uv_loop_t* loop, ClientCallbacks callbacks)
    : loop_(loop), core_(std::move(callbacks), this) {
  // Neither can fail for a valid loop (they only initialise memory).
  uv_timer_init(loop_, &timer_);
  uv_prepare_init(loop_, &prepare_);
  timer_.data = this;
  prepare_.data = this;
}

UvClient::~UvClient() = default;

void UvClient::close() noexcept {
  if (closing_) return;
  closing_ = true;
  core_.close();  // gives back unsent parks, unwatches (closing the poll handle), stops the timer
  close_watch();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), on_handle_closed);
}

void UvClient::delete_when_done() noexcept {
  if (closing_ && owner_released_ && handles_open_ == 0 && watches_closing_ == 0) delete this;
}

void UvClient::on_handle_closed(uv_handle_t* handle) noexcept {
  auto* self = static_cast<UvClient*>(handle->data);
  --self->handles_open_;
  self->delete_when_done();
}

// ---- ClientLoop ------------------------------------------------------------------------------

void UvClient::watch(int fd, bool writable) noexcept {
  if (watch_ != nullptr && watch_->fd != fd) close_watch();
  if (watch_ == nullptr) {
    auto* w = new PollWatch;
    w->owner = this;
    w->fd = fd;
    w->poll.data = w;
    if (int rc = uv_poll_init(loop_, &w->poll, fd); rc != 0) {
      delete w;  // never initialised: no close callback to wait for
      watch_error_ = Error{-rc};
      flush_needed();  // on_prepare abandons the connection, outside the core's own call
      return;
    }
    watch_ = w;
  }
  int events = UV_READABLE | UV_DISCONNECT | (writable ? UV_WRITABLE : 0);
  if (int rc = uv_poll_start(&watch_->poll, events, on_poll); rc != 0) {
    watch_error_ = Error{-rc};
    flush_needed();
  }
}

void UvClient::unwatch(int fd) noexcept {
  if (watch_ != nullptr && watch_->fd == fd) close_watch();
}

void UvClient::close_watch() noexcept {
  if (watch_ == nullptr) return;
  ++watches_closing_;
  uv_close(reinterpret_cast<uv_handle_t*>(&watch_->poll), on_watch_closed);
  watch_ = nullptr;
}

void UvClient::on_watch_closed(uv_handle_t* handle) noexcept {
  auto* w = static_cast<PollWatch*>(handle->data);
  UvClient* self = w->owner;
  delete w;
  --self->watches_closing_;
  self->delete_when_done();
}

void UvClient::set_timer(std::optional<std::chrono::milliseconds> delay) noexcept {
  if (closing_) return;
  if (delay) {
    uv_timer_start(&timer_, on_timer, static_cast<std::uint64_t>(delay->count()), 0);
  } else {
    uv_timer_stop(&timer_);
  }
}

void UvClient::flush_needed() noexcept {
  if (!closing_) uv_prepare_start(&prepare_, on_prepare);
}

// ---- libuv callbacks ---------------------------------------------------------------------

void UvClient::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* w = static_cast<PollWatch*>(handle->data);
  UvClient* self = w->owner;
  if (self->watch_ != w) return;  // a connection already given up
  if (status < 0) {
    // POLLERR: parker closed with frames of ours unread. What it sent first is still to read.
    self->core_.on_socket_error(Error{-status});
    return;
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) self->core_.on_readable();
  // The read may have ended this connection (and closed this handle): check again.
  if (self->watch_ == w && (events & UV_WRITABLE) != 0) self->core_.on_writable();
}

void UvClient::on_timer(uv_timer_t* handle) noexcept {
  static_cast<UvClient*>(handle->data)->core_.on_timer();
}

void UvClient::on_prepare(uv_prepare_t* handle) noexcept {
  auto* self = static_cast<UvClient*>(handle->data);
  uv_prepare_stop(handle);
  if (self->watch_error_.failed()) {
    Error e = self->watch_error_;
    self->watch_error_ = {};
    self->core_.abandon_connection(e);
    return;
  }
  self->core_.flush();
}

}  // namespace parker
