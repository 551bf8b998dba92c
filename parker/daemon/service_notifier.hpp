// ServiceNotifier: keeps systemd informed while parker runs (Type=notify) — READY=1 once
// parker listens, STATUS= with its counts every few seconds, WATCHDOG=1 at half the
// WatchdogSec= interval (sent from the loop, so a stuck loop misses it), STOPPING=1 at
// shutdown. Without $NOTIFY_SOCKET it does nothing and starts no timer.
//
// Its timer is unreferenced: it never keeps the loop alive on its own. close() before the
// loop's last run.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <string>

namespace parker::daemon {

class ServiceNotifier {
 public:
  using Status = std::function<std::string()>;  // "12 parked; 340 parks, 328 wakes so far"

  ServiceNotifier(uv_loop_t* loop, Status status);
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  void ready();     // READY=1 + STATUS; starts the status/watchdog timer
  void stopping();  // STOPPING=1; stops the timer
  void close() noexcept;

  [[nodiscard]] bool enabled() const noexcept { return enabled_; }

 private:
  static void on_timer(uv_timer_t* handle) noexcept;
  void send(const std::string& state) noexcept;

  uv_loop_t* loop_;
  Status status_;
  bool enabled_ = false;
  std::chrono::microseconds watchdog_{0};
  uv_timer_t timer_{};
  bool timer_open_ = false;
};

}  // namespace parker::daemon
