// fuzz_client_incoming: what parker::Client does with whatever "parker" sends it.
//
// Each input opens a real session: a Client connects to a listening Unix socket of ours
// (abstract name, made once per run), we accept it and read its HELLO, then play parker:
// the input's chunks (fuzz_support.hpp) are sent as they are, real fds attached, and the
// client's on_readable() runs whenever a chunk asks, the socket is full, and at the end.
// Callbacks take every fd they are given and drop it.
//
// Input: u8 mode, then chunks. Mode bits make the program around the client busier:
//   0x01 answer  on_wake parks the woken fd again, on_closed drops the id; flush() follows
//   0x02 hang up parker's end is closed after the last chunk
//   0x04 timer   on_timer() fires at the end (a hello timeout, or a reconnect attempt)
//   0x08 retry   reconnect after a failure (otherwise the client stays disconnected)
//   high nibble  n > 0: the n-th callback calls close()
//
// Properties, each a trap when violated (besides no crash, no ASan/UBSan report):
//   * no fd leaks: once the client is closed and destroyed and parker's end is gone, the
//     process has exactly the fds it had before the input;
//   * every fd handed to a callback is open;
//   * the loop contract holds: an fd is watched until unwatch(), which comes while it is
//     still open, and nothing is watched once close() returns.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "parker/client.hpp"
#include "parker/protocol.hpp"
#include "parker/unix_socket.hpp"

namespace proto = parker::protocol;

namespace {

void check(bool condition) {
  if (!condition) __builtin_trap();
}
void check_open(const parker::UniqueFd& fd) { check(fd.valid() && ::fcntl(fd.get(), F_GETFD) != -1); }

constexpr std::uint8_t kAnswer = 0x01;
constexpr std::uint8_t kHangUp = 0x02;
constexpr std::uint8_t kFireTimer = 0x04;
constexpr std::uint8_t kRetry = 0x08;

// on_readable() calls per pump: each reads until EAGAIN (at most 16 reads of 64 KiB), so a
// few cover any input; the bound only stops a client that would spin.
constexpr int kMaxPumps = 64;

// Parker's listening socket, made once: a fresh one per input would cost more than the input.
struct Listener {
  std::string path = "@parker-fuzz-client-" + std::to_string(::getpid());
  parker::UniqueFd fd;
  Listener() {
    auto listening = parker::listen_unix(path);
    check(listening.ok());
    fd = std::move(listening.value);
  }
};

// A ClientLoop that polls nothing and checks how the client uses it.
class CheckingLoop final : public parker::ClientLoop {
 public:
  void watch(int fd, bool) noexcept override {
    check(watched_ == -1 || watched_ == fd);
    watched_ = fd;
  }
  void unwatch(int fd) noexcept override {
    check(fd == watched_ && ::fcntl(fd, F_GETFD) != -1);  // let go before the fd is closed
    watched_ = -1;
  }
  void set_timer(std::optional<std::chrono::milliseconds>) noexcept override {}
  void flush_needed() noexcept override { flush_needed_ = true; }

  [[nodiscard]] int watched() const noexcept { return watched_; }
  bool take_flush() noexcept { return std::exchange(flush_needed_, false); }

 private:
  int watched_ = -1;
  bool flush_needed_ = false;
};

// Reads the client's HELLO from `peer`: it was written whole by connect().
void expect_hello(int peer) {
  std::vector<std::byte> buffer(512);
  std::size_t used = 0;
  for (int tries = 0; tries < 16 && used < buffer.size(); ++tries) {
    ssize_t n = ::recv(peer, buffer.data() + used, buffer.size() - used, MSG_DONTWAIT);
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
    proto::DecodeResult r = proto::decode(std::span(buffer).first(used), 0);
    if (r.status == proto::DecodeStatus::need_more) continue;
    check(r.status == proto::DecodeStatus::ok && std::holds_alternative<proto::Hello>(r.message));
    return;
  }
  check(false);
}

// Accepts and drops connections the client made on its own (a reconnect from on_timer).
void drop_pending(int listener) {
  for (int i = 0; i < 8; ++i) {
    auto extra = parker::accept_connection(listener);
    if (!extra.ok()) return;
  }
}

void run(const Listener& listener, const parker::fuzz::FdSource& source, std::uint8_t mode,
         std::span<const parker::fuzz::Chunk> chunks) {
  CheckingLoop loop;
  parker::Client* self = nullptr;
  unsigned callbacks_seen = 0;
  const unsigned close_at = mode >> 4;
  auto tick = [&] {
    if (++callbacks_seen == close_at) self->close();
  };

  parker::ClientCallbacks callbacks;
  callbacks.on_connected = [&](const proto::Welcome&) { tick(); };
  callbacks.on_disconnected = [&](parker::Error, std::chrono::milliseconds) { tick(); };
  callbacks.on_wake = [&](parker::WokenConnection woken) {
    parker::UniqueFd fd = std::move(woken.fd);
    check_open(fd);
    if ((mode & kAnswer) != 0) (void)self->park(fd, woken.id, woken.blob);  // on failure: still ours, dropped
    tick();
  };
  callbacks.on_rejected = [&](parker::RejectedPark park) {
    parker::UniqueFd fd = std::move(park.fd);
    check_open(fd);
    (void)park.describe();
    tick();
  };
  callbacks.on_closed = [&](std::uint64_t id, proto::CloseReason) {
    if ((mode & kAnswer) != 0) (void)self->drop(id);
    tick();
  };
  callbacks.on_error = [&](const proto::ErrorMessage&) { tick(); };
  callbacks.on_credit = [&](std::uint32_t) { tick(); };

  parker::Client client(std::move(callbacks), &loop);
  self = &client;
  parker::ClientOptions options;
  options.reconnect = (mode & kRetry) != 0;
  check(client.connect(listener.path, "fuzz", options).ok());
  check(client.state() == parker::Client::State::waiting);

  auto accepted = parker::accept_connection(listener.fd.get());
  check(accepted.ok());
  parker::UniqueFd peer = std::move(accepted.value);
  expect_hello(peer.get());

  auto pump = [&] {
    for (int i = 0; i < kMaxPumps && client.fd() >= 0; ++i) {
      pollfd p{client.fd(), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      client.on_readable();
      if ((mode & kAnswer) != 0 && loop.take_flush()) client.flush();
    }
    return client.fd() >= 0;
  };
  (void)parker::fuzz::send_chunks(peer.get(), chunks, source, pump);
  if ((mode & kHangUp) != 0) {
    peer.reset();
    pump();
  }
  if ((mode & kFireTimer) != 0 && client.timer_deadline()) {
    client.on_timer();
    pump();
  }

  client.close();
  check(loop.watched() == -1 && client.fd() == -1);
  check(client.state() == parker::Client::State::idle);
  drop_pending(listener.fd.get());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  parker::fuzz::raise_fd_limit();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Listener listener;
  static const parker::fuzz::FdSource source;
  if (size < 1) return 0;
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  std::vector<parker::fuzz::Chunk> chunks = parker::fuzz::split_chunks(input);

  const std::size_t fds_before = parker::fuzz::open_fd_count();
  run(listener, source, data[0], chunks);
  check(parker::fuzz::open_fd_count() == fds_before);
  return 0;
}
