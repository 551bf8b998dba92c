#include "keeper.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "parker/fd_passing.hpp"
#include "parker/peer_credentials.hpp"
#include "parker/unix_socket.hpp"

namespace parker::keeper {

namespace proto = protocol;

namespace {
// A restore is sent in frames like a hand-over's: up to 253 records and 256 KiB of body each.
constexpr std::size_t kRestoreFrameBytes = 256 * 1024;
}  // namespace

Keeper::Keeper(KeeperConfig config) : config_(std::move(config)), store_(monotonic_ms) {}

int Keeper::run() {
  ListenOptions listen_options;
  listen_options.nonblocking = true;
  auto listening = listen_unix(config_.socket_path, listen_options);
  if (!listening.ok()) {
    spdlog::error("cannot listen on {}: {}", config_.socket_path, describe(listening.error));
    return 1;
  }
  listener_ = std::move(listening.value);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  ::signal(SIGPIPE, SIG_IGN);
  spdlog::info("keeping parker's connections; listening on {}", config_.socket_path);

  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({listener_.get(), POLLIN, 0});
    fds.push_back({signal_fd.get(), POLLIN, 0});
    for (const Peer& p : peers_) fds.push_back({p.socket.get(), POLLIN, 0});
    const int timeout = peers_.empty() && !config_.stay ? static_cast<int>(config_.linger.count() * 1000) : -1;
    int ready = ::poll(fds.data(), fds.size(), timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", describe(Error::from_errno()));
      return 1;
    }
    if (ready == 0) {
      if (store_.size() != 0) {
        spdlog::warn("no parker came back for {} s; closing the {} connection(s) kept", config_.linger.count(),
                     store_.size());
      }
      break;
    }
    if (fds[1].revents != 0) {
      spdlog::info("stopping on a signal; closing the {} connection(s) kept", store_.size());
      break;
    }
    // Peers first, in the order they connected: a parker's last updates before the one
    // that follows it says hello.
    std::size_t i = 2;
    for (auto it = peers_.begin(); it != peers_.end(); ++i) {
      if (fds[i].revents != 0 && !serve(*it)) {
        it = peers_.erase(it);
      } else {
        ++it;
      }
      if (stop_) break;
    }
    if (fds[0].revents != 0) accept_peers();
  }
  store_.clear();
  return exit_status_;
}

void Keeper::accept_peers() {
  for (;;) {
    auto accepted = accept_connection(listener_.get(), /*nonblocking=*/true);
    if (!accepted.ok()) {
      if (!accepted.error.is(EAGAIN)) spdlog::warn("accept: {}", describe(accepted.error));
      return;
    }
    UniqueFd socket = std::move(accepted.value);
    auto cred = peer_credentials(socket.get());
    // What the keeper holds is parker's: only parker's uid (this one's) or root may see it.
    if (!cred.ok() || (cred.value.uid != 0 && cred.value.uid != ::geteuid())) {
      spdlog::warn("refused a peer of uid {}: only uid {} or root may talk to the keeper",
                   cred.ok() ? static_cast<long>(cred.value.uid) : -1L, ::geteuid());
      continue;
    }
    timeval tv{static_cast<time_t>(config_.send_timeout.count() / 1000),
               static_cast<suseconds_t>(config_.send_timeout.count() % 1000 * 1000)};
    ::setsockopt(socket.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    peers_.push_back(Peer{std::move(socket), {}, false});
  }
}

// Everything the peer has sent is handled before another peer's: the updates of a parker
// that hands over precede, in the store, the parks of its successor.
bool Keeper::serve(Peer& peer) {
  for (;;) {
    Error e = peer.reader.read_from(peer.socket.get());
    if (e.is(EAGAIN)) return true;
    if (e.is(EINTR)) continue;
    if (e.failed()) {
      if (!e.is(ECONNRESET)) {
        spdlog::warn("parker's connection failed: {}", describe(e));
      } else {
        spdlog::debug("parker disconnected; keeping {} connection(s)", store_.size());
      }
      return false;
    }
    while (auto frame = peer.reader.next()) {
      if (!handle(peer, *frame)) return false;
      if (stop_) return true;
    }
    if (peer.reader.error() != proto::DecodeError::none) {
      spdlog::warn("malformed frame from parker ({}); dropping that connection, keeping what is kept",
                   proto::to_string(peer.reader.error()));
      return false;
    }
  }
}

bool Keeper::handle(Peer& peer, proto::Frame& frame) {
  proto::Message& m = frame.message;
  if (auto* control = std::get_if<proto::KeepControl>(&m)) {
    switch (control->command) {
      case proto::KeepCommand::hello:
        peer.said_hello = true;
        // A parker before levels says 0 and reads state next: it is sent nothing else.
        peer.level = std::min(control->count, proto::kKeeperLevel);
        if (peer.level != 0 && !send(peer, proto::KeepControl{proto::KeepCommand::level, proto::kKeeperLevel})) {
          return false;
        }
        return send(peer, proto::KeepControl{proto::KeepCommand::state, store_.size()});
      case proto::KeepCommand::restore:
        return peer.said_hello && restore(peer);
      case proto::KeepCommand::bye:
        if (store_.size() != 0) {
          spdlog::warn("parker stopped with {} connection(s) still kept; closing them", store_.size());
        }
        if (config_.stay) {
          store_.clear();
          spdlog::info("parker stopped cleanly; waiting for the next one");
          return true;
        }
        spdlog::info("parker stopped cleanly; exiting");
        stop_ = true;
        return true;
      case proto::KeepCommand::state:
      case proto::KeepCommand::level:
        break;
    }
  } else if (auto* keep = std::get_if<proto::Handover>(&m); keep != nullptr && peer.said_hello) {
    for (std::size_t i = 0; i < keep->records.size(); ++i) {
      if (keep->records[i].kind == proto::HandoverKind::listener) continue;  // not ours to keep
      store_.keep(std::move(keep->records[i]), std::move(frame.fds[i]));
    }
    return true;
  } else if (auto* update = std::get_if<proto::KeepUpdate>(&m); update != nullptr && peer.said_hello) {
    for (const proto::KeepUpdateRecord& u : update->records) (void)store_.update(u);
    return true;
  }
  spdlog::warn("unexpected {} from parker; dropping that connection", proto::to_string(proto::type_of(m)));
  return false;
}

// Copies of everything, for a parker that starts where a dead one left off. The store keeps
// its own: the new parker sends every connection again as it parks it, and until then these
// are what survives another crash.
bool Keeper::restore(Peer& peer) {
  std::vector<KeptStore::Lent> all = store_.lend_all();
  spdlog::info("restoring {} connection(s) ({} parked, {} held, {} with unsent bytes) to parker", all.size(),
               store_.parked(), store_.held(), store_.with_unsent());
  proto::Handover batch;
  std::vector<int> fds;
  std::size_t bytes = 0;
  auto send_batch = [&]() {
    if (batch.records.empty()) return true;
    bool ok = send(peer, batch, fds);
    batch.records.clear();
    fds.clear();
    bytes = 0;
    return ok;
  };
  for (KeptStore::Lent& lent : all) {
    if (peer.level < proto::kKeeperLevelUnsent && !lent.record.unsent.empty()) {
      // A parker before level 1 may not read HANDOVER kind 4: it gets the held wake without
      // its bytes, as it would have kept it itself.
      spdlog::warn("pool {}: held wake of id {} restored without its {} unsent bytes (parker of keeper level {})",
                   lent.record.pool, lent.record.id, lent.record.unsent.size(), peer.level);
      lent.record.unsent.clear();
    }
    std::size_t size = proto::encoded_size(lent.record);
    if (batch.records.size() == kMaxFdsPerMessage || (bytes + size > kRestoreFrameBytes && !batch.records.empty())) {
      if (!send_batch()) return false;
    }
    bytes += size;
    fds.push_back(lent.fd);
    batch.records.push_back(std::move(lent.record));
  }
  if (!send_batch()) return false;
  return send(peer, proto::HandoverEnd{all.size(), {}});
}

bool Keeper::send(Peer& peer, const proto::Message& message, std::span<const int> fds) {
  std::vector<std::byte> bytes = proto::encode(message);
  // Blocking for this write (bounded by SO_SNDTIMEO): parker reads while it waits for us.
  (void)set_nonblocking(peer.socket.get(), false);
  Error e = send_all_with_fds(peer.socket.get(), bytes, fds);
  (void)set_nonblocking(peer.socket.get(), true);
  if (e.failed()) {
    spdlog::warn("cannot write to parker: {}; dropping that connection", describe(e));
    return false;
  }
  return true;
}

}  // namespace parker::keeper
