#include "fd_pass_methods.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "loopback.hpp"
#include "parker/fd_passing.hpp"
#include "parker/unix_socket.hpp"
#include "processes.hpp"

namespace parker::bench {
namespace {

constexpr char kReady = 'R';
constexpr char kDone = 'D';
constexpr std::size_t kReceiveBuffer = 64;  // same for every method

// ---- the floor: straight on the syscalls ------------------------------------------------

void floor_send(int socket, std::size_t batch, std::size_t messages, int fd) {
  std::vector<int> fds(batch, fd);
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * batch);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * batch);
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * batch);
  for (std::size_t i = 0; i < messages; ++i) {
    if (::sendmsg(socket, &msg, MSG_NOSIGNAL) != 1) {
      throw std::runtime_error(fmt::format("sendmsg: {}", std::strerror(errno)));
    }
  }
}

int floor_receive(int socket, std::size_t total) {
  std::size_t received = 0;
  char data[kReceiveBuffer];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];
  while (received < total) {
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return 2;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        ::close(fd);
      }
      received += count;
    }
  }
  return 0;
}

// ---- the project's library --------------------------------------------------------------

void library_send(int socket, std::size_t batch, std::size_t messages, int fd) {
  std::vector<int> fds(batch, fd);
  const std::byte byte{'x'};
  for (std::size_t i = 0; i < messages; ++i) {
    auto sent = send_with_fds(socket, std::span(&byte, 1), fds);
    if (!sent.ok()) throw std::runtime_error("send_with_fds: " + describe(sent.error));
  }
}

int library_receive(int socket, std::size_t total) {
  std::size_t received = 0;
  std::byte data[kReceiveBuffer];
  std::vector<UniqueFd> fds;
  fds.reserve(kMaxFdsPerMessage);
  while (received < total) {
    auto got = receive_with_fds(socket, data, fds);
    if (!got.ok() || got.value == 0) return 2;
    received += fds.size();
    fds.clear();  // closes them
  }
  return 0;
}

// ---- libuv IPC --------------------------------------------------------------------------

struct UvSender {
  uv_loop_t loop{};
  uv_pipe_t pipe{};
  uv_tcp_t handle{};
  uv_timer_t deadline{};
  std::vector<uv_write_t> requests;
  std::size_t total = 0;
  std::size_t issued = 0;
  std::size_t completed = 0;
  int error = 0;
  bool timed_out = false;
};

void uv_close_all(UvSender& s) {
  for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&s.pipe), reinterpret_cast<uv_handle_t*>(&s.handle),
                         reinterpret_cast<uv_handle_t*>(&s.deadline)}) {
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  }
}

void uv_issue(UvSender& s, uv_write_t* req);

void uv_written_cb(uv_write_t* req, int status) noexcept {
  auto& s = *static_cast<UvSender*>(req->data);
  if (status < 0) {
    if (s.error == 0) s.error = status;
    uv_close_all(s);
    return;
  }
  ++s.completed;
  if (s.completed == s.total) {
    uv_close_all(s);
  } else if (s.issued < s.total && s.error == 0) {
    uv_issue(s, req);
  }
}

void uv_issue(UvSender& s, uv_write_t* req) {
  static char byte = 'x';
  uv_buf_t buf = uv_buf_init(&byte, 1);
  req->data = &s;
  ++s.issued;
  int rc = uv_write2(req, reinterpret_cast<uv_stream_t*>(&s.pipe), &buf, 1,
                     reinterpret_cast<uv_stream_t*>(&s.handle), uv_written_cb);
  if (rc < 0 && s.error == 0) {
    s.error = rc;
    uv_close_all(s);
  }
}

void libuv_send(int socket, std::size_t total, int fd, std::chrono::milliseconds timeout) {
  UvSender s;
  s.total = total;
  uv_loop_init(&s.loop);
  uv_pipe_init(&s.loop, &s.pipe, 1);
  uv_tcp_init(&s.loop, &s.handle);
  uv_timer_init(&s.loop, &s.deadline);
  s.deadline.data = &s;
  // libuv closes what it was given: hand it copies.
  uv_pipe_open(&s.pipe, ::dup(socket));
  uv_tcp_open(&s.handle, ::dup(fd));
  uv_timer_start(&s.deadline, [](uv_timer_t* t) noexcept {
    auto& sender = *static_cast<UvSender*>(t->data);
    sender.timed_out = true;
    uv_close_all(sender);
  }, static_cast<std::uint64_t>(timeout.count()), 0);
  // A window of writes in flight: libuv queues them; a fresh one goes out as each completes.
  s.requests.resize(std::min<std::size_t>(total, 256));
  for (auto& req : s.requests) uv_issue(s, &req);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  uv_loop_close(&s.loop);
  if (s.timed_out) throw std::runtime_error("libuv sender timed out");
  if (s.error != 0) throw std::runtime_error(fmt::format("uv_write2: {}", uv_strerror(s.error)));
}

struct UvReceiver {
  uv_loop_t loop{};
  uv_pipe_t pipe{};
  uv_timer_t deadline{};
  std::size_t total = 0;
  std::size_t received = 0;
  int ack_fd = -1;
  bool failed = false;
  char buffer[64 * 1024];
};

void uv_receiver_close(UvReceiver& r) {
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&r.pipe))) uv_close(reinterpret_cast<uv_handle_t*>(&r.pipe), nullptr);
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&r.deadline))) uv_close(reinterpret_cast<uv_handle_t*>(&r.deadline), nullptr);
}

void uv_receive_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t*) noexcept {
  auto& r = *static_cast<UvReceiver*>(stream->data);
  auto* pipe = reinterpret_cast<uv_pipe_t*>(stream);
  while (uv_pipe_pending_count(pipe) > 0) {
    (void)uv_pipe_pending_type(pipe);  // a TCP socket, as sent
    auto* client = new uv_tcp_t;
    uv_tcp_init(&r.loop, client);
    if (uv_accept(stream, reinterpret_cast<uv_stream_t*>(client)) != 0) r.failed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(client),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_tcp_t*>(h); });
    ++r.received;
  }
  if (r.received >= r.total) {
    char done = kDone;
    (void)!::write(r.ack_fd, &done, 1);
    uv_receiver_close(r);
  } else if (nread < 0) {
    r.failed = true;
    uv_receiver_close(r);
  }
}

int libuv_receive(int socket, std::size_t total, int ack_fd) {
  auto r = std::make_unique<UvReceiver>();
  r->total = total;
  r->ack_fd = ack_fd;
  uv_loop_init(&r->loop);
  uv_pipe_init(&r->loop, &r->pipe, 1);
  uv_pipe_open(&r->pipe, socket);
  r->pipe.data = r.get();
  uv_timer_init(&r->loop, &r->deadline);
  r->deadline.data = r.get();
  uv_timer_start(&r->deadline, [](uv_timer_t* t) noexcept {
    auto& receiver = *static_cast<UvReceiver*>(t->data);
    receiver.failed = true;
    uv_receiver_close(receiver);
  }, 10 * 60 * 1000, 0);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&r->pipe),
                [](uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
                  auto& receiver = *static_cast<UvReceiver*>(h->data);
                  *buf = uv_buf_init(receiver.buffer, sizeof receiver.buffer);
                },
                uv_receive_cb);
  // Ready only once the loop is set up, so its setup is not timed.
  char ready = kReady;
  (void)!::write(ack_fd, &ready, 1);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  uv_loop_close(&r->loop);
  return r->failed ? 3 : 0;
}

int run_receiver(FdPassMethod method, int socket, std::size_t total, int ack_fd) {
  if (method == FdPassMethod::libuv) return libuv_receive(socket, total, ack_fd);
  char ready = kReady;
  (void)!::write(ack_fd, &ready, 1);
  int rc = method == FdPassMethod::floor ? floor_receive(socket, total) : library_receive(socket, total);
  if (rc == 0) {
    char done = kDone;
    (void)!::write(ack_fd, &done, 1);
  }
  return rc;
}

}  // namespace

std::string_view to_string(FdPassMethod method) noexcept {
  switch (method) {
    case FdPassMethod::floor: return "floor";
    case FdPassMethod::library: return "library";
    case FdPassMethod::libuv: return "libuv";
  }
  return "?";
}

double measure_fd_passing(FdPassMethod method, std::size_t batch, std::size_t total,
                          int fd_to_send, std::chrono::milliseconds timeout) {
  if (method == FdPassMethod::libuv) batch = 1;
  std::size_t messages = (total + batch - 1) / batch;
  total = messages * batch;

  auto pair = make_socket_pair(SOCK_STREAM);
  if (!pair.ok()) throw std::runtime_error("socketpair: " + describe(pair.error));
  auto& [tx, rx] = pair.value;
  int ack[2];
  if (::pipe2(ack, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  UniqueFd ack_read(ack[0]), ack_write(ack[1]);

  int rx_fd = rx.get(), ack_fd = ack_write.get();
  ChildProcess receiver = ChildProcess::fork_function(
      [&] { return run_receiver(method, rx_fd, total, ack_fd); }, {rx_fd, ack_fd});
  rx.reset();
  ack_write.reset();
  // A stuck receiver must not block a blocking sender forever.
  timeval send_timeout{static_cast<time_t>(timeout.count() / 1000), 0};
  ::setsockopt(tx.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);

  char byte = 0;
  if (!read_exact(ack_read.get(), &byte, 1, timeout) || byte != kReady) {
    throw std::runtime_error(fmt::format("{} receiver did not start", to_string(method)));
  }
  double start = now_seconds();
  switch (method) {
    case FdPassMethod::floor: floor_send(tx.get(), batch, messages, fd_to_send); break;
    case FdPassMethod::library: library_send(tx.get(), batch, messages, fd_to_send); break;
    case FdPassMethod::libuv: libuv_send(tx.get(), total, fd_to_send, timeout); break;
  }
  bool done = read_exact(ack_read.get(), &byte, 1, timeout) && byte == kDone;
  double seconds = now_seconds() - start;
  tx.reset();
  auto status = receiver.wait(5s);
  if (!done) {
    throw std::runtime_error(fmt::format("{} receiver did not confirm {} fds (exit status {})",
                                         to_string(method), total, status ? *status : -1));
  }
  return static_cast<double>(total) / seconds;
}

}  // namespace parker::bench
