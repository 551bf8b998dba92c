// Daemon: its side of --keeper (keeper_link.hpp, parker/keeper/): the link on the loop, the
// flush order that keeps the keeper ahead of every owner, and a new keeper when one is lost.
#include <spdlog/spdlog.h>

#include "control_session.hpp"
#include "daemon.hpp"
#include "keeper_link.hpp"
#include "pool.hpp"

namespace parker::daemon {

namespace {
constexpr std::uint64_t kKeeperRetryMs = 1000;
}  // namespace

void Daemon::use_keeper(std::unique_ptr<KeeperLink> keeper, std::function<std::unique_ptr<KeeperLink>()> reopen) {
  keeper_ = std::move(keeper);
  reopen_keeper_ = std::move(reopen);
  core_.keeper = keeper_.get();
}

void Daemon::start_keeper() {
  if (!keeper_) return;
  keeper_->start(
      loop_,
      [this] {
        // Sessions held back while the keeper's socket was full may write now.
        for (ControlSession* s : sessions_) mark_dirty(*s);
      },
      [this] {
        for (ControlSession* s : sessions_) mark_dirty(*s);
        if (reopen_keeper_ && !totals_.stopping) uv_timer_start(&keeper_timer_, on_keeper_timer, kKeeperRetryMs, 0);
      });
}

void Daemon::on_keeper_timer(uv_timer_t* handle) noexcept { static_cast<Daemon*>(handle->data)->reconnect_keeper(); }

// A new keeper gets a copy of everything parked and held. What is in flight to owners (sent,
// not yet acknowledged) is theirs by then or comes back to a pool; it is kept again when
// parked again.
void Daemon::reconnect_keeper() {
  if (totals_.stopping || handover_) return;
  std::unique_ptr<KeeperLink> fresh = reopen_keeper_();
  if (!fresh) {
    uv_timer_start(&keeper_timer_, on_keeper_timer, kKeeperRetryMs, 0);
    return;
  }
  if (keeper_) keeper_->close();
  keeper_ = std::move(fresh);
  core_.keeper = keeper_.get();
  for (auto& [name, pool] : pools_) pool->send_all_to_keeper(*keeper_);
  spdlog::info("a keeper again: {} parked and {} held connection(s) sent to it", totals_.parked, totals_.held);
  start_keeper();
  (void)keeper_->flush();
}

}  // namespace parker::daemon
