// PeerListener: parker's listening Unix socket — the file, the accept loop, and the EMFILE
// trick — handing each connected peer to a callback.
//
// Lifetime: stop() closes the poll handle (libuv frees nothing of ours) and the fd, and
// unlinks the socket file; call it before the loop's last run.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "parker/error.hpp"
#include "parker/unique_fd.hpp"

namespace parker::daemon {

class PeerListener {
 public:
  using NewPeer = std::function<void(UniqueFd peer)>;

  PeerListener() = default;
  PeerListener(const PeerListener&) = delete;
  PeerListener& operator=(const PeerListener&) = delete;

  // Creates the socket file at `path` (mode `mode`, never briefly wider) and starts
  // accepting. `emfile_total` counts connections shed for want of descriptors.
  [[nodiscard]] Error start(uv_loop_t* loop, const std::string& path, unsigned mode, NewPeer on_peer,
                            std::uint64_t& emfile_total);
  // Accepts on a listening socket made by someone else (systemd socket activation): made
  // non-blocking and close-on-exec here; its file, if any, belongs to its maker and is left
  // in place by stop(). `name` is only for the log.
  [[nodiscard]] Error adopt(uv_loop_t* loop, UniqueFd listening, const std::string& name, NewPeer on_peer,
                            std::uint64_t& emfile_total);
  // Stops accepting and removes the socket file (unless adopted). Idempotent.
  void stop() noexcept;
  // Hand-over to a successor parker: stop accepting for a while (peers wait in the backlog),
  // and start again if the successor fails.
  void pause() noexcept;
  void resume() noexcept;
  // The listening fd (to lend to a successor), or -1.
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // Whose the socket file is: give it up once a successor listens on this socket (stop()
  // then leaves the file), or claim it for a socket taken over (stop() then removes it).
  void give_up_path() noexcept { owns_path_ = false; }
  void claim_path(const std::string& path) {
    path_ = path;
    owns_path_ = true;
  }
  [[nodiscard]] bool listening() const noexcept { return listening_; }

 private:
  static void on_readable(uv_poll_t* handle, int status, int events) noexcept;
  void accept_connections();
  void shed_one_connection();  // EMFILE: accept with the spare fd and close at once

  [[nodiscard]] Error watch(uv_loop_t* loop, UniqueFd listening, NewPeer on_peer, std::uint64_t& emfile_total);

  std::string path_;
  bool owns_path_ = true;  // false for an adopted socket: its file is not ours to unlink
  UniqueFd fd_;
  UniqueFd spare_fd_;  // given up on EMFILE so that one connection can be accepted and shed
  uv_poll_t poll_{};
  bool listening_ = false;
  NewPeer on_peer_;
  std::uint64_t* emfile_total_ = nullptr;
};

}  // namespace parker::daemon
