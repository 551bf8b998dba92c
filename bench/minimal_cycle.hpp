// The park/wake cycle of owner_cycle.hpp against the floor a parker could reach (issue 13):
// the minimal parker's watcher, straight on the syscalls — park = recvmsg + epoll_ctl ADD,
// wake = epoll_ctl DEL + sendmsg + close — with nothing else (no index, no records, no
// credit, no confirmations). The harness starts the watcher; the cycle runs in the owner
// process of park_wake_throughput, on the same M connections as the cycle through parker, so
// the two rates can be divided.
//
//   park: the M fds in messages of `batch`, the owner closing its copies once each message
//         is sent; then "recall the last": the watcher's in-order answer means every park
//         was processed.                               parked/s = M / (first send -> it is back)
//   wake: "recall the rest": the watcher takes each out of its epoll and sends them back,
//         253 per message, closing its copies.         woken/s = (M-1) / (ask -> last one back)
#pragma once

#include <cstddef>
#include <vector>

#include "owner_cycle.hpp"
#include "parker/unique_fd.hpp"
#include "processes.hpp"

namespace parker::bench {

// The watcher process and our end of a socketpair to it, for the owner to inherit. Start it
// from the harness, not from the owner: libuv's fork handler in a child closes and reopens
// the fd numbers of the harness's libuv signal pipe, which in a forked owner may by then be
// reused (for this socket, say) — a grandchild would lose that fd.
class MinimalWatcher {
 public:
  MinimalWatcher();
  MinimalWatcher(const MinimalWatcher&) = delete;
  MinimalWatcher& operator=(const MinimalWatcher&) = delete;

  [[nodiscard]] int socket() const noexcept { return socket_.get(); }
  [[nodiscard]] pid_t pid() const noexcept { return watcher_.pid(); }

 private:
  UniqueFd socket_;
  ChildProcess watcher_;
};

// In the owner: one cycle over `held` (see the file comment) through the watcher at
// `watcher_socket`; `held` holds the connections again after it. Times go to
// control->park_seconds / wake_seconds; with control->parker_pid (the watcher's pid) the CPU
// time the owner and the watcher used in each phase too, as park_wake_cycle does for parker;
// a failure to control->error.
void minimal_cycle(int watcher_socket, std::vector<UniqueFd>& held, std::size_t batch, OwnerControl* control);

}  // namespace parker::bench
