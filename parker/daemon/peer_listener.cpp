#include "peer_listener.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>

#include "parker/unix_socket.hpp"

namespace parker::daemon {
namespace {

constexpr int kAcceptsPerEvent = 64;

UniqueFd open_spare_fd() { return UniqueFd(::open("/", O_RDONLY | O_CLOEXEC)); }

bool is_abstract(const std::string& path) { return !path.empty() && path.front() == '@'; }

}  // namespace

Error PeerListener::start(uv_loop_t* loop, const std::string& path, unsigned mode, NewPeer on_peer,
                          std::uint64_t& emfile_total) {
  auto listening = listen_unix(path, ListenOptions{static_cast<mode_t>(mode), 1024, 0, true});
  if (!listening.ok()) return listening.error;
  if (Error e = watch(loop, std::move(listening.value), std::move(on_peer), emfile_total); e.failed()) {
    if (!is_abstract(path)) (void)::unlink(path.c_str());
    return e;
  }
  path_ = path;
  owns_path_ = true;
  return {};
}

Error PeerListener::adopt(uv_loop_t* loop, UniqueFd listening, const std::string& name, NewPeer on_peer,
                          std::uint64_t& emfile_total) {
  // systemd hands sockets over blocking and without FD_CLOEXEC; the accept loop needs
  // EAGAIN to know when to stop.
  if (Error e = set_nonblocking(listening.get()); e.failed()) return e;
  if (::fcntl(listening.get(), F_SETFD, FD_CLOEXEC) != 0) return Error::from_errno();
  if (Error e = watch(loop, std::move(listening), std::move(on_peer), emfile_total); e.failed()) return e;
  path_ = name;
  owns_path_ = false;
  return {};
}

Error PeerListener::watch(uv_loop_t* loop, UniqueFd listening, NewPeer on_peer, std::uint64_t& emfile_total) {
  if (int rc = uv_poll_init(loop, &poll_, listening.get()); rc != 0) return Error{-rc};
  fd_ = std::move(listening);
  spare_fd_ = open_spare_fd();
  on_peer_ = std::move(on_peer);
  emfile_total_ = &emfile_total;
  poll_.data = this;
  uv_poll_start(&poll_, UV_READABLE, on_readable);
  listening_ = true;
  return {};
}

void PeerListener::stop() noexcept {
  if (!listening_) return;
  listening_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);  // stops the poll before the fd goes
  fd_.reset();
  spare_fd_.reset();
  if (owns_path_ && !is_abstract(path_)) (void)::unlink(path_.c_str());
}

void PeerListener::pause() noexcept {
  if (listening_) uv_poll_stop(&poll_);
}

void PeerListener::resume() noexcept {
  if (listening_) uv_poll_start(&poll_, UV_READABLE, on_readable);
}

void PeerListener::on_readable(uv_poll_t* handle, int status, int /*events*/) noexcept {
  auto* self = static_cast<PeerListener*>(handle->data);
  if (status < 0) {
    spdlog::error("listener: {}", uv_strerror(status));
    return;
  }
  self->accept_connections();
}

void PeerListener::accept_connections() {
  for (int i = 0; i < kAcceptsPerEvent && listening_; ++i) {
    auto accepted = accept_connection(fd_.get(), true);
    if (accepted.ok()) {
      on_peer_(std::move(accepted.value));
      continue;
    }
    int e = accepted.error.code;
    if (e == EAGAIN || e == EWOULDBLOCK) return;
    if (e == EMFILE || e == ENFILE) {
      shed_one_connection();
      continue;
    }
    if (e == ECONNABORTED || e == EPROTO || e == EINTR) continue;
    spdlog::error("accept: {}", describe(accepted.error));
    return;
  }
}

// Out of descriptors: a level-triggered listener would report the same pending connection
// forever. Like libuv's uv__emfile_trick: give up the spare fd, accept, close at once (the
// peer sees its connection closed), take the spare back.
void PeerListener::shed_one_connection() {
  std::uint64_t n = ++*emfile_total_;
  if (n == 1 || n % 1000 == 0) spdlog::warn("out of file descriptors: refusing connections ({} so far)", n);
  spare_fd_.reset();
  auto shed = accept_connection(fd_.get(), true);
  shed.value.reset();
  spare_fd_ = open_spare_fd();
}

}  // namespace parker::daemon
