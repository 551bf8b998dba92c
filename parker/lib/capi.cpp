// The C API (parker/parker.h) over parker::Client. Each entry point is noexcept: a C++
// exception (only std::bad_alloc can come out of the client) becomes -ENOMEM and never
// crosses into C. Fds leave the C++ owners (UniqueFd) with release() exactly when the C
// side becomes their owner: at a successful park (the client's UniqueFd), and at a callback.
#include "parker/parker.h"

#include <cerrno>
#include <chrono>
#include <new>
#include <string>

#include "parker/client.hpp"
#include "parker/default_socket_path.hpp"

struct parker_client {
  parker_callbacks c{};
  parker::Client client;

  explicit parker_client(const parker_callbacks& callbacks) : c(callbacks), client(make_callbacks()) {}

 private:
  // The C++ callbacks call the C ones; a NULL C callback leaves the C++ one empty, so the
  // library closes fds handed to it, as the header promises.
  parker::ClientCallbacks make_callbacks() {
    parker::ClientCallbacks cb;
    if (c.on_connected) cb.on_connected = [this](const parker::protocol::Welcome&) { c.on_connected(c.user); };
    if (c.on_disconnected) {
      cb.on_disconnected = [this](parker::Error e, std::chrono::milliseconds retry) {
        c.on_disconnected(c.user, -e.code, static_cast<std::uint32_t>(retry.count()));
      };
    }
    if (c.on_wake) {
      cb.on_wake = [this](parker::WokenConnection w) {
        c.on_wake(c.user, w.fd.release(), w.id, w.blob.data(), w.blob.size(), static_cast<int>(w.reason));
      };
    }
    if (c.on_rejected) {
      cb.on_rejected = [this](parker::RejectedPark r) {
        int reason = r.reason ? static_cast<int>(*r.reason) : PARKER_REJECT_NOT_SENT;
        c.on_rejected(c.user, r.fd.release(), r.id, r.blob.data(), r.blob.size(), reason);
      };
    }
    if (c.on_closed) {
      cb.on_closed = [this](std::uint64_t id, parker::protocol::CloseReason reason) {
        c.on_closed(c.user, id, static_cast<int>(reason));
      };
    }
    if (c.on_parked) cb.on_parked = [this](std::uint64_t id) { c.on_parked(c.user, id); };
    if (c.on_error) {
      cb.on_error = [this](const parker::protocol::ErrorMessage& m) {
        c.on_error(c.user, static_cast<int>(m.code), m.text.c_str());
      };
    }
    if (c.on_credit) cb.on_credit = [this](std::uint32_t available) { c.on_credit(c.user, available); };
    if (c.on_left) cb.on_left = [this](parker::Error e) { c.on_left(c.user, -e.code); };
    return cb;
  }
};

namespace {

int to_c(parker::Error e) noexcept { return -e.code; }

template <class F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;  // not expected: the client throws nothing else
  }
}

}  // namespace

extern "C" {

int parker_client_new(const parker_callbacks* callbacks, parker_client** out) {
  if (out == nullptr) return -EINVAL;
  *out = nullptr;
  parker_callbacks none{};
  return guarded([&] {
    *out = new parker_client(callbacks != nullptr ? *callbacks : none);
    return 0;
  });
}

void parker_client_free(parker_client* client) { delete client; }

int parker_connect(parker_client* client, const char* path, const char* pool) {
  if (client == nullptr || pool == nullptr) return -EINVAL;
  return guarded([&] {
    std::string where = path != nullptr ? std::string(path) : parker::default_socket_path();
    return to_c(client->client.connect(where, pool));
  });
}

const char* parker_default_socket_path(void) {
  thread_local std::string path;
  try {
    path = parker::default_socket_path();
  } catch (...) {
    path.clear();
  }
  return path.c_str();
}

int parker_park(parker_client* client, int fd, uint64_t id, const void* blob, size_t blob_size,
                const parker_park_options* options) {
  if (client == nullptr || (blob == nullptr && blob_size != 0)) return -EINVAL;
  if (fd < 0) return -EBADF;
  parker::ParkOptions o;
  if (options != nullptr) {
    o.deadline = std::chrono::milliseconds(options->deadline_ms);
    o.wake_on_deadline = options->wake_on_deadline != 0;
    o.wake_on_hangup = options->wake_on_hangup != 0;
  }
  return guarded([&] {
    parker::UniqueFd owned(fd);
    parker::Error e = client->client.park(owned, id, {static_cast<const char*>(blob), blob_size}, o);
    // On failure the fd stays the caller's: take it back out of our owner unclosed.
    if (e.failed()) (void)owned.release();
    return to_c(e);
  });
}

int parker_recall(parker_client* client, uint64_t id) {
  if (client == nullptr) return -EINVAL;
  return guarded([&] { return to_c(client->client.recall(id)); });
}

int parker_drop(parker_client* client, uint64_t id) {
  if (client == nullptr) return -EINVAL;
  return guarded([&] { return to_c(client->client.drop(id)); });
}

int parker_leave(parker_client* client) {
  if (client == nullptr) return -EINVAL;
  return guarded([&] { return to_c(client->client.leave()); });
}

void parker_flush(parker_client* client) {
  if (client != nullptr) (void)guarded([&] { client->client.flush(); return 0; });
}

void parker_close(parker_client* client) {
  if (client != nullptr) (void)guarded([&] { client->client.close(); return 0; });
}

int parker_fd(const parker_client* client) { return client != nullptr ? client->client.fd() : -1; }

int parker_wants_write(const parker_client* client) {
  return client != nullptr && client->client.wants_write() ? 1 : 0;
}

int parker_timer_ms(const parker_client* client) {
  if (client == nullptr) return -1;
  auto deadline = client->client.timer_deadline();
  if (!deadline) return -1;
  auto now = std::chrono::steady_clock::now();
  if (*deadline <= now) return 0;
  // Rounded up: a loop that sleeps this long finds the timer due, not 1 ms early.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now).count();
  return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms);
}

void parker_on_readable(parker_client* client) {
  if (client != nullptr) (void)guarded([&] { client->client.on_readable(); return 0; });
}

void parker_on_writable(parker_client* client) {
  if (client != nullptr) (void)guarded([&] { client->client.on_writable(); return 0; });
}

void parker_on_timer(parker_client* client) {
  if (client != nullptr) (void)guarded([&] { client->client.on_timer(); return 0; });
}

int parker_connected(const parker_client* client) { return client != nullptr && client->client.connected() ? 1 : 0; }

uint32_t parker_credit(const parker_client* client) { return client != nullptr ? client->client.credit() : 0; }

size_t parker_unconfirmed_parks(const parker_client* client) {
  return client != nullptr ? client->client.unconfirmed_parks() : 0;
}

const char* parker_strerror(int error) {
  thread_local std::string text;
  try {
    text = parker::describe(parker::Error{-error});
  } catch (...) {
    return "out of memory";
  }
  return text.c_str();
}

const char* parker_version(void) { return PARKER_VERSION; }

}  // extern "C"
