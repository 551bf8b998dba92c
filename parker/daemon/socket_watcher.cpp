#include "socket_watcher.hpp"

#include <cerrno>

#if defined(__linux__)
#include <sys/epoll.h>
#else
#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#endif

namespace parker::daemon {
namespace {
// Events taken from the kernel per wait; libuv calls again while more are ready.
constexpr int kBatch = 1024;
}  // namespace

// ---- the kernel shim: create, add, remove, wait ---------------------------------------------

#if defined(__linux__)

static int backend_create() { return ::epoll_create1(EPOLL_CLOEXEC); }

static int backend_add(int backend, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;  // EPOLLERR and EPOLLHUP are always reported
  ev.data.fd = fd;
  return ::epoll_ctl(backend, EPOLL_CTL_ADD, fd, &ev);
}

static int backend_modify(int backend, int fd, bool edge) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (edge ? EPOLLET : 0u);
  ev.data.fd = fd;
  return ::epoll_ctl(backend, EPOLL_CTL_MOD, fd, &ev);
}

static void backend_remove(int backend, int fd) {
  epoll_event ev{};  // non-null for kernels before 2.6.9
  (void)::epoll_ctl(backend, EPOLL_CTL_DEL, fd, &ev);
}

template <class Emit>
static int backend_wait(int backend, Emit emit) {
  epoll_event events[kBatch];
  int n;
  do {
    n = ::epoll_wait(backend, events, kBatch, 0);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; ++i) {
    emit(events[i].data.fd, (events[i].events & EPOLLERR) != 0);
  }
  return n;
}

#else  // kqueue: the BSDs and macOS (not built on the Linux CI machines)

static int backend_create() {
  int kq = ::kqueue();
  if (kq >= 0) ::fcntl(kq, F_SETFD, FD_CLOEXEC);
  return kq;
}

static int backend_add(int backend, int fd) {
  struct kevent change;
  EV_SET(&change, fd, EVFILT_READ, EV_ADD, 0, 0, nullptr);  // EV_EOF is reported with it
  return ::kevent(backend, &change, 1, nullptr, 0, nullptr);
}

static int backend_modify(int backend, int fd, bool edge) {
  struct kevent change;
  EV_SET(&change, fd, EVFILT_READ, EV_ADD | (edge ? EV_CLEAR : 0), 0, 0, nullptr);
  return ::kevent(backend, &change, 1, nullptr, 0, nullptr);
}

static void backend_remove(int backend, int fd) {
  struct kevent change;
  EV_SET(&change, fd, EVFILT_READ, EV_DELETE, 0, 0, nullptr);
  (void)::kevent(backend, &change, 1, nullptr, 0, nullptr);
}

template <class Emit>
static int backend_wait(int backend, Emit emit) {
  struct kevent events[kBatch];
  timespec zero{0, 0};
  int n;
  do {
    n = ::kevent(backend, nullptr, 0, events, kBatch, &zero);
  } while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; ++i) {
    emit(static_cast<int>(events[i].ident), (events[i].flags & EV_ERROR) != 0);
  }
  return n;
}

#endif

// ---- the watcher ---------------------------------------------------------------------------

Error SocketWatcher::open(uv_loop_t* loop, ReadyCallback on_ready, void* context) {
  backend_.reset(backend_create());
  if (!backend_) return Error::from_errno();
  if (int rc = uv_poll_init(loop, &poll_, backend_.get()); rc != 0) {
    backend_.reset();
    return Error{-rc};
  }
  poll_.data = this;
  on_ready_ = on_ready;
  context_ = context;
  open_ = true;
  uv_poll_start(&poll_, UV_READABLE, on_backend_ready);
  return {};
}

void SocketWatcher::close() noexcept {
  if (!open_) return;
  open_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);  // stops the poll first
  backend_.reset();
}

Error SocketWatcher::add(int fd) noexcept {
  if (backend_add(backend_.get(), fd) != 0) return Error::from_errno();
  return {};
}

void SocketWatcher::remove(int fd) noexcept { backend_remove(backend_.get(), fd); }

Error SocketWatcher::set_edge_triggered(int fd, bool edge) noexcept {
  if (backend_modify(backend_.get(), fd, edge) != 0) return Error::from_errno();
  return {};
}

void SocketWatcher::on_backend_ready(uv_poll_t* handle, int /*status*/, int /*events*/) noexcept {
  static_cast<SocketWatcher*>(handle->data)->drain();
}

void SocketWatcher::drain() noexcept {
  backend_wait(backend_.get(), [this](int fd, bool error) { on_ready_(context_, fd, error); });
}

}  // namespace parker::daemon
