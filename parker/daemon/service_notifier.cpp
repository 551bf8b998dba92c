#include "service_notifier.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "systemd.hpp"

namespace parker::daemon {
namespace {

// How often STATUS= is refreshed when no watchdog asks for more often.
constexpr std::uint64_t kStatusEveryMs = 5000;

}  // namespace

ServiceNotifier::ServiceNotifier(uv_loop_t* loop, Status status) : loop_(loop), status_(std::move(status)) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  enabled_ = where != nullptr && *where != '\0';
  watchdog_ = systemd::watchdog_interval();
}

void ServiceNotifier::send(const std::string& state) noexcept {
  if (Error e = systemd::notify(state); e.failed()) {
    spdlog::warn("sd_notify: cannot tell the service manager '{}': {}", state.substr(0, state.find('\n')), describe(e));
  }
}

void ServiceNotifier::ready() {
  if (!enabled_) return;
  send("READY=1\nSTATUS=" + status_());
  std::uint64_t every = kStatusEveryMs;
  if (watchdog_.count() > 0) {
    // Half the interval, as sd_watchdog_enabled(3) advises; at least 1 ms.
    every = std::min<std::uint64_t>(every, std::max<std::uint64_t>(1, static_cast<std::uint64_t>(watchdog_.count()) / 2000));
    send("WATCHDOG=1");
  }
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  timer_open_ = true;
  uv_timer_start(&timer_, on_timer, every, every);
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void ServiceNotifier::on_timer(uv_timer_t* handle) noexcept {
  auto* self = static_cast<ServiceNotifier*>(handle->data);
  std::string state;
  try {
    state = "STATUS=" + self->status_();
  } catch (...) {
    return;
  }
  if (self->watchdog_.count() > 0) state += "\nWATCHDOG=1";
  self->send(state);
}

void ServiceNotifier::stopping() {
  if (!enabled_) return;
  if (timer_open_) uv_timer_stop(&timer_);
  send("STOPPING=1\nSTATUS=stopping: handing connections back");
}

void ServiceNotifier::close() noexcept {
  if (!timer_open_) return;
  timer_open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace parker::daemon
