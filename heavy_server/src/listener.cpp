#include "heavy/listener.hpp"

#include <memory>

namespace heavy {

Listener* Listener::start(uv_loop_t* loop, parker::UniqueFd fd, AcceptReady on_ready) {
  std::unique_ptr<Listener, void (*)(Listener*)> l(new Listener(std::move(fd), std::move(on_ready)),
                                                   [](Listener* p) { delete p; });
  if (uv_poll_init_socket(loop, &l->poll_, l->fd_.get()) != 0) return nullptr;
  Listener* raw = l.release();
  raw->poll_.data = raw;
  if (uv_poll_start(&raw->poll_, UV_READABLE, on_poll) != 0) {
    raw->close();
    return nullptr;
  }
  return raw;
}

void Listener::on_poll(uv_poll_t* handle, int status, int events) noexcept {
  auto* l = static_cast<Listener*>(handle->data);
  if (l->closing_) return;
  if (status < 0 || (events & UV_READABLE) == 0) return;
  try {
    l->on_ready_();
  } catch (...) {
    // on_ready must not throw; a failure to accept is retried on the next readiness
  }
}

void Listener::on_closed(uv_handle_t* handle) noexcept { delete static_cast<Listener*>(handle->data); }

void Listener::close() noexcept {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_closed);  // stops the poll at once
  fd_.reset();
}

parker::UniqueFd Listener::detach() noexcept {
  if (closing_) return {};
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_closed);
  return std::move(fd_);
}

}  // namespace heavy
