// A scripted stand-in for the parker daemon, for client tests: a real Unix socket peer that
// speaks protocol v1 through the codec, driven step by step from the test's own thread.
//
// The test pumps it (pump(), or the run_until helpers) together with the client, so nothing
// blocks: the fake accepts and reads whatever has arrived, and the test looks at frames()
// and answers with send().
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "parker/client.hpp"
#include "parker/fd_passing.hpp"
#include "parker/frame_reader.hpp"
#include "parker/protocol.hpp"
#include "parker/unix_socket.hpp"
#include "support/fd_count.hpp"

namespace parker::test {

namespace proto = parker::protocol;

class FakeParker {
 public:
  explicit FakeParker(std::string path) : path_(std::move(path)) {
    auto listener = listen_unix(path_);
    REQUIRE(listener.ok());
    listener_ = std::move(listener.value);
  }
  ~FakeParker() { stop_listening(); }
  FakeParker(const FakeParker&) = delete;
  FakeParker& operator=(const FakeParker&) = delete;

  // Accepts a pending connection (if none is open) and reads every frame that has arrived.
  // A protocol error or EOF from the client marks the connection closed.
  void pump() {
    if (!connection_ && listener_) {
      auto accepted = accept_connection(listener_.get(), true);
      if (accepted.ok()) {
        connection_ = std::move(accepted.value);
        reader_ = proto::FrameReader{};
        ++connections_accepted_;
        peer_closed_ = false;
      }
    }
    if (!connection_) return;
    for (int i = 0; i < 64; ++i) {
      Error e = reader_.read_from(connection_.get());
      if (e.is(EAGAIN)) break;
      if (e.failed()) {
        peer_closed_ = true;
        connection_.reset();
        break;
      }
      while (auto frame = reader_.next()) frames_.push_back(std::move(*frame));
      REQUIRE(reader_.error() == proto::DecodeError::none);
    }
  }

  // Sends one message with its fds (blocking until all of it is written).
  void send(const proto::Message& message, const std::vector<int>& fds = {}) {
    REQUIRE(connection_);
    auto bytes = proto::encode(message);
    REQUIRE(set_nonblocking(connection_.get(), false).ok());
    Error e = send_all_with_fds(connection_.get(), bytes, fds);
    REQUIRE(set_nonblocking(connection_.get(), true).ok());
    REQUIRE(e.ok());
  }
  void send_raw(std::span<const std::byte> bytes, const std::vector<int>& fds = {}) {
    REQUIRE(connection_);
    REQUIRE(send_all_with_fds(connection_.get(), bytes, fds).ok());
  }

  // A fake parker speaks 1.0 unless asked for 1.1 (`minor`).
  void welcome(std::uint32_t credit, std::uint32_t max_blob = 65536, std::uint64_t session_id = 1,
               std::uint16_t minor = 0) {
    send(proto::Welcome{proto::kVersionMajor, minor, max_blob, 0, credit, session_id, 0});
  }

  // Reads every byte and fd the client has written so far, then closes the connection.
  // Returns how many fds it received (in whole frames or not), all of them now closed.
  std::size_t drain_and_close() {
    std::size_t fds = 0;
    if (connection_) {
      for (int i = 0; i < 100000; ++i) {
        Error e = reader_.read_from(connection_.get());
        if (e.failed()) break;
        while (auto frame = reader_.next()) {
          fds += frame->fds.size();
          frames_.push_back(std::move(*frame));
        }
      }
      fds += reader_.queued_fds();
    }
    close_connection();
    return fds;
  }

  void close_connection() {
    connection_.reset();
    reader_ = proto::FrameReader{};
  }
  void stop_listening() {
    close_connection();
    if (listener_) {
      listener_.reset();
      ::unlink(path_.c_str());
    }
  }

  [[nodiscard]] bool connected() const noexcept { return connection_.valid(); }
  [[nodiscard]] bool peer_closed() const noexcept { return peer_closed_; }
  [[nodiscard]] int connections_accepted() const noexcept { return connections_accepted_; }
  [[nodiscard]] int connection_fd() const noexcept { return connection_.get(); }
  [[nodiscard]] std::deque<proto::Frame>& frames() noexcept { return frames_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  // The frames of one type received so far, taken out of frames() (with their fds).
  template <class T>
  std::vector<std::pair<T, std::vector<UniqueFd>>> take() {
    std::vector<std::pair<T, std::vector<UniqueFd>>> out;
    for (auto it = frames_.begin(); it != frames_.end();) {
      if (auto* m = std::get_if<T>(&it->message)) {
        out.emplace_back(std::move(*m), std::move(it->fds));
        it = frames_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

 private:
  std::string path_;
  UniqueFd listener_;
  UniqueFd connection_;
  proto::FrameReader reader_;
  std::deque<proto::Frame> frames_;
  int connections_accepted_ = 0;
  bool peer_closed_ = false;
};

// Drives a parker::Client the way a poll() loop would, pumping `fake` (if any) in between,
// until `done()` or `timeout`. Returns done().
inline bool run_until(Client& client, FakeParker* fake, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return done();
    client.flush();
    if (client.fd() >= 0) {
      pollfd p{client.fd(), static_cast<short>(POLLIN | (client.wants_write() ? POLLOUT : 0)), 0};
      if (::poll(&p, 1, 2) > 0) {
        if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) client.on_readable();
        if ((p.revents & POLLOUT) != 0 && client.fd() >= 0) client.on_writable();
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (auto due = client.timer_deadline(); due && std::chrono::steady_clock::now() >= *due) client.on_timer();
    if (fake != nullptr) fake->pump();
  }
  return true;
}

// Pumps only the fake until `done()`.
inline bool pump_until(FakeParker& fake, const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return done();
    fake.pump();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A connected socket pair to park: `parked` goes to the client, `peer` stays with the test
// (write to it to make the parked end readable; it reads EOF once the parked end is closed
// everywhere).
struct ParkableSocket {
  UniqueFd parked;
  UniqueFd peer;
};
inline ParkableSocket make_parkable() {
  auto pair = make_socket_pair(0, true);
  REQUIRE(pair.ok());
  return {std::move(pair.value.first), std::move(pair.value.second)};
}

// A byte written on `peer` can be read from `woken`: the two are still the ends of one live
// connection (no one closed the woken end on the way).
inline bool still_connected(int peer, int woken) {
  const char byte = 'x';
  if (::send(peer, &byte, 1, MSG_NOSIGNAL) != 1) return false;
  pollfd p{woken, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return false;
  char got = 0;
  return ::recv(woken, &got, 1, 0) == 1 && got == byte;
}

// `n` fresh sockets and a WAKE frame for them (ids 0..n-1, reason readable).
struct WakeBatch {
  std::vector<ParkableSocket> sockets;
  protocol::Wake wake;
  explicit WakeBatch(std::size_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      sockets.push_back(make_parkable());
      wake.records.push_back({i, protocol::WakeReason::readable, "w" + std::to_string(i)});
    }
  }
  [[nodiscard]] std::vector<int> fds() const {
    std::vector<int> out;
    for (const ParkableSocket& s : sockets) out.push_back(s.parked.get());
    return out;
  }
  // Once sent: the frame in flight holds the only copies.
  void let_go() {
    for (ParkableSocket& s : sockets) s.parked.reset();
  }
};

}  // namespace parker::test
